# The README's two commands:  `make train`  and  `make test`.
# Each creates the virtual environment it needs on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: train test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.train-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[cli,bf16]"
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@ $(VENV)/.train-deps

## Train the default model on bundled data (no download).
train: $(VENV)/.train-deps
	$(BIN)/neural-arch train

## Run the whole test suite.
test: $(VENV)/.test-deps
	$(BIN)/python -m neural_arch.backend.kernels
	$(BIN)/python -m pytest -q

## Benchmarks against PyTorch (see BENCHMARKS.md). OpenBLAS picks its kernel for this CPU:
## an environment that forces an older one (OPENBLAS_CORETYPE) would halve our matmul speed.
bench: $(VENV)/.test-deps
	env -u OPENBLAS_CORETYPE $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
