"""ONNX files as served models: the graph runs in onnxruntime, behind the same app and batching.

``neural-arch export --format onnx`` writes a graph with one input and one output, ``logits``:

- ``input_ids`` int64 (B, T) -> (B, T, V): a causal language model. Served on ``/v1/completions`` by
  :class:`~neural_arch.serve.decoding.RecomputeDecodeLoop` (the graph has no key/value cache, so each
  decoding step runs every row's context again; requests still share steps);
- ``pixels`` / ``pixel_values`` float32 (B, C, H, W) -> (B, classes): an image classifier, served on
  ``/v1/classify``.

The graph holds no tokenizer, labels or image transform: they come from where the export put the file,
a run directory (``RUN/export/model.onnx``: the run's checkpoint says what it was trained on) or a
Hugging Face folder (``FOLDER/model.onnx``: its config.json, tokenizer and preprocessor_config.json).
A graph exported without ``--dynamic-batch`` takes a fixed batch size; batches are then cut to it and
the last one padded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neural_arch.cli.build import build_run, checkpoint_config
from neural_arch.config import load_config
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.models import load_tokenizer
from neural_arch.serve.runners import softmax_rows
from neural_arch.serve.served import (
    CLASSIFY,
    COMPLETIONS,
    ServedModel,
    hf_image_transform,
    hf_labels,
    image_classifier,
)

__all__ = ["OnnxCausalLM", "OnnxGraph", "load_onnx"]


class OnnxGraph:
    """An onnxruntime session of a one-input graph; ``run(x)`` feeds any batch size, whatever the graph's."""

    def __init__(self, path: Path):
        try:
            import onnxruntime  # noqa: PLC0415 - optional: the onnx extra
        except ImportError as e:
            raise ConfigError("serving an ONNX file needs onnxruntime: pip install 'neural-arch[onnx]'") from e
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a graph it cannot read
            raise CheckpointError(f"serve: onnxruntime cannot load '{path}': {e}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"serve: '{path}' has {len(inputs)} inputs ({[i.name for i in inputs]}); a graph of "
                              "neural-arch export has one (input_ids or pixels)")
        self.input = inputs[0]
        first = self.input.shape[0] if self.input.shape else None
        self.fixed_batch = first if isinstance(first, int) and first > 0 else None

    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph's first output for ``x``, in slices of the graph's batch size when it has a fixed one."""
        n = self.fixed_batch
        if n is None or len(x) == n:
            return self.session.run(None, {self.input.name: x})[0]
        outs = []
        for i in range(0, len(x), n):
            part = x[i:i + n]
            padded = np.concatenate([part, np.repeat(part[-1:], n - len(part), axis=0)]) if len(part) < n else part
            outs.append(self.session.run(None, {self.input.name: padded})[0][:len(part)])
        return np.concatenate(outs)


class OnnxCausalLM:
    """A causal LM graph as :class:`RecomputeDecodeLoop` calls it: ``logits(ids (B, T)) -> (B, T, V)``."""

    key_value_cache = False  # the app's runners pick the recomputing loop for it

    def __init__(self, graph: OnnxGraph, max_positions: int | None):
        self.graph, self.max_positions = graph, max_positions

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """The graph's logits (B, T, V) for int64 ids (B, T)."""
        return self.graph.run(np.ascontiguousarray(ids, np.int64))


def load_onnx(path: Path, name: str) -> ServedModel:
    """An exported ONNX file with the tokenizer / labels / transform of the folder it was exported into."""
    graph = OnnxGraph(path)
    is_lm = graph.input.name == "input_ids"
    if (path.parent / "config.json").is_file():
        return _from_hf_folder(path.parent, graph, is_lm, name)
    ckpt = next((d / "checkpoints" / "last.safetensors" for d in (path.parent, path.parent.parent)
                 if (d / "checkpoints" / "last.safetensors").is_file()), None)
    if ckpt is not None:
        return _from_run(ckpt, graph, is_lm, name)
    raise ConfigError(f"serve: '{path}' is an ONNX graph without its tokenizer or labels: serve it where "
                      "`neural-arch export` wrote it (RUN/export/model.onnx, or inside the Hugging Face folder), "
                      "next to the run's checkpoints/ or the folder's config.json")


def _from_hf_folder(folder: Path, graph: OnnxGraph, is_lm: bool, name: str) -> ServedModel:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if is_lm:
        limit = config.get("n_positions") if config.get("model_type") == "gpt2" else None
        eos = config.get("eos_token_id")
        eos = eos if isinstance(eos, int) and 0 <= eos < int(config.get("vocab_size", 0)) else None
        return ServedModel(name, COMPLETIONS, OnnxCausalLM(graph, limit), load_tokenizer(folder), eos_token_id=eos)
    labels = hf_labels(config, len(config.get("id2label") or {}) or int(config.get("num_labels", 2)))
    return _classifier(name, graph, labels, **hf_image_transform(folder, config))


def _from_run(ckpt: Path, graph: OnnxGraph, is_lm: bool, name: str) -> ServedModel:
    cfg = load_config(None, (), base=checkpoint_config(ckpt))
    run = build_run(cfg)  # the tokenizer, or the dataset's labels and statistics, as training had them
    if is_lm != (run.tokenizer is not None):
        raise ConfigError(f"serve: the ONNX graph takes {graph.input.name!r} but the run next to it trained a "
                          f"{cfg.model.name} model; export the run again")
    if is_lm:
        limit = getattr(getattr(run.model, "lm", run.model), "max_positions", None)
        return ServedModel(name, COMPLETIONS, OnnxCausalLM(graph, limit), run.tokenizer)
    served = image_classifier(name, None, cfg)
    return _classifier(name, graph, served.labels, transform=served.transform, image_mode=served.image_mode,
                       image_size=served.image_size)


def _classifier(name: str, graph: OnnxGraph, labels: list, **image) -> ServedModel:
    def run_batch(images: list[np.ndarray]) -> list[np.ndarray]:
        logits = graph.run(np.stack(images).astype(np.float32))
        if logits.shape[-1] != len(labels):
            raise ConfigError(f"the ONNX graph gives {logits.shape[-1]} scores per image for {len(labels)} labels")
        return softmax_rows(logits)

    return ServedModel(name, CLASSIFY, graph, labels=labels, run_batch=run_batch, **image)
