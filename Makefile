# The README's two commands:  `make train`  and  `make test`.
# Each creates the virtual environment it needs on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: train test bench docs diagrams clean

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

# What some tests read from the system, installed through apt when missing (as root, or through sudo);
# $(call apt_install,PACKAGE,WHAT) fails loudly, naming the package, when it cannot be.
define apt_install
@command -v apt-get >/dev/null || { echo "make test: $@ is missing and there is no apt-get;" \
  "install Debian's $(1) ($(2))" >&2; exit 1; }
@if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else \
  echo "make test: $@ is missing; as root run: apt-get update && apt-get install $(1)" >&2; \
  exit 1; fi; \
$$sudo apt-get update -q && $$sudo apt-get install -y -q $(1) || { \
  echo "make test: installing $(1) failed (see above)" >&2; exit 1; }
@test -e $@ || { echo "make test: $(1) is installed but $@ is missing" >&2; exit 1; }
endef

# Fashion-MNIST (the real-data test of data/mnist.py; or copy its four .gz files to the folder)
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
# Chromium, which tests/docs/test_site.py drives headless (through playwright)
CHROMIUM := $(firstword $(shell command -v chromium chromium-browser 2>/dev/null) /usr/bin/chromium)
# Graphviz's dot, which tests/graph/test_trace.py renders an SVG with (Graph.to_svg)
DOT := $(firstword $(shell command -v dot 2>/dev/null) /usr/bin/dot)

$(FASHION_MNIST):
	$(call apt_install,dataset-fashion-mnist,the Fashion-MNIST files)
$(CHROMIUM):
	$(call apt_install,chromium,the docs test drives it headless)
$(DOT):
	$(call apt_install,graphviz,Graph.to_svg calls dot)

## Run the whole test suite.
test: $(VENV)/.test-deps $(FASHION_MNIST) $(CHROMIUM) $(DOT)
	$(BIN)/python -m neural_arch.backend.kernels
	$(BIN)/python -m pytest -q

## Benchmarks against PyTorch (see BENCHMARKS.md). OpenBLAS picks its kernel for this CPU:
## an environment that forces an older one (OPENBLAS_CORETYPE) would halve our matmul speed.
bench: $(VENV)/.test-deps
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks

## The documentation site, into site/ (`$(BIN)/mkdocs serve` to browse it while editing).
docs: $(VENV)/.test-deps
	PYTHONPATH=src NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/python -m mkdocs build --strict

## Redraw the architecture diagrams (docs/diagrams/*.dot -> .svg, committed) with Graphviz's dot.
diagrams:
	for f in docs/diagrams/*.dot; do dot -Tsvg "$$f" -o "$${f%.dot}.svg"; done

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache
