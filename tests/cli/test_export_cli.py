"""`neural-arch export`: runs trained by the CLI become ONNX files (run in onnxruntime), Hugging Face
folders (loaded by transformers, logits compared) and bare safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers
import yaml
from click.testing import CliRunner

import neural_arch as na
import onnx
from neural_arch.cli import main

LM_KWARGS = {
    "gpt2": {"n_layer": 1, "n_head": 2, "n_embd": 16},
    "modern": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "n_embd": 16},
    "bert": {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0},
}


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def train_run(tmp_path, model, kwargs, data="tinyshakespeare") -> Path:
    run = tmp_path / model
    cfg = {"name": model, "seed": 1, "run_dir": str(run), "model": {"name": model, "kwargs": kwargs},
           "data": {"name": data, "block_size": 16, "val_windows": 16, "prefetch": 0},
           "optimizer": {"name": "adamw", "lr": 0.01}, "scheduler": {"name": "none"},
           "train": {"batch_size": 4, "max_steps": 2, "eval_every": None, "checkpoint_every": None,
                     "log_every": 1},
           "logging": {"progress": False, "plot": False, "sample_chars": 0}}
    path = tmp_path / f"{model}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out = cli("train", path)
    assert code == 0, out
    return run


def load_ours(run):
    from neural_arch.cli.build import build_run, checkpoint_config
    from neural_arch.config import load_config
    from neural_arch.io import load_checkpoint

    ckpt = run / "checkpoints" / "last.safetensors"
    r = build_run(load_config(None, (), base=checkpoint_config(ckpt)))
    load_checkpoint(ckpt, r.model, restore_rng=False)
    return r.model.eval()


def test_gpt2_run_to_onnx_with_dynamic_batch(tmp_path):
    run = train_run(tmp_path, "gpt2", LM_KWARGS["gpt2"])
    code, out = cli("export", run, "--format", "onnx", "--dynamic-batch")
    assert code == 0, out
    path = run / "export" / "model.onnx"
    assert str(path) in out
    onnx.checker.check_model(onnx.load(path), full_check=True)
    ids = np.random.default_rng(0).integers(0, 30, size=(3, 11))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0]
    with na.no_grad():
        want = load_ours(run)(na.tensor(ids)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    code, out = cli("export", run, "--format", "onnx")  # never overwrites
    assert code != 0 and "already exists" in out


def test_image_run_to_onnx(tmp_path):
    run = train_run(tmp_path, "mlp", {"hidden": [8]}, data="fashion_mnist")
    code, out = cli("export", run / "checkpoints" / "last.safetensors", "-o", tmp_path / "mlp.onnx",
                    "--dynamic-batch", "--opset", "18")
    assert code == 0, out
    x = np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": x})[0]
    with na.no_grad():
        want = load_ours(run)(na.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model, hf_class", [("gpt2", "GPT2LMHeadModel"), ("modern", "LlamaForCausalLM"),
                                             ("bert", "BertForMaskedLM")])
def test_run_to_hugging_face_folder_loads_in_transformers(tmp_path, model, hf_class):
    run = train_run(tmp_path, model, LM_KWARGS[model])
    code, out = cli("export", run, "--format", "hf", "-o", tmp_path / "hf")
    assert code == 0, out
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == [hf_class]
    theirs = getattr(transformers, hf_class).from_pretrained(tmp_path / "hf").eval()
    ids = np.random.default_rng(2).integers(0, 30, size=(2, 9))
    with torch.no_grad():
        want = theirs(torch.tensor(ids)).logits.numpy()
    with na.no_grad():
        got = load_ours(run)(na.tensor(ids)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_safetensors_and_refusals(tmp_path):
    run = train_run(tmp_path, "char_mlp", {"context": 4, "n_embd": 8, "hidden": 16})
    code, out = cli("export", run, "--format", "safetensors")
    assert code == 0, out
    weights = na.load(run / "export" / "model.safetensors")
    state = load_ours(run).state_dict()
    assert set(weights) == set(state)
    for k, v in state.items():
        np.testing.assert_array_equal(np.asarray(getattr(weights[k], "data", weights[k])), v.data)
    code, out = cli("export", run, "--format", "hf")
    assert code != 0 and "no Hugging Face layout" in out
    # char_mlp's windows index the ids with a (T, context) array that changes with the dynamic sequence
    # length in a form the exporter does not rebuild: it must refuse, not bake it in
    code, out = cli("export", run, "--format", "onnx")
    assert code != 0 and "changes with the dynamic sizes" in out and "does not know" in out


@pytest.mark.parametrize("kind", ["gpt2", "vit"])
def test_a_hugging_face_folder_to_onnx(tmp_path, kind):
    if kind == "gpt2":
        from neural_arch.models import GPT2Config, GPT2LMHeadModel

        model = GPT2LMHeadModel(GPT2Config(vocab_size=30, n_positions=16, n_embd=16, n_layer=1, n_head=2)).eval()
        x = np.random.default_rng(4).integers(0, 30, size=(3, 7))
        name = "input_ids"
    else:
        from neural_arch.models import ViTConfig, ViTForImageClassification

        model = ViTForImageClassification(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                    intermediate_size=24, image_size=8, patch_size=4,
                                                    num_channels=3, num_labels=4)).eval()
        x = np.random.default_rng(4).standard_normal((3, 3, 8, 8)).astype(np.float32)
        name = "pixel_values"
    model.save_pretrained(tmp_path / "hf")
    code, out = cli("export", tmp_path / "hf", "--dynamic-batch")
    assert code == 0, out
    sess = ort.InferenceSession(str(tmp_path / "hf" / "model.onnx"), providers=["CPUExecutionProvider"])
    with na.no_grad():
        want = (model(na.tensor(x), use_cache=False) if kind == "gpt2" else model(na.tensor(x))).logits.numpy()
    np.testing.assert_allclose(sess.run(None, {name: x})[0], want, atol=1e-4, rtol=1e-4)
    code, out = cli("export", tmp_path / "hf", "--format", "hf")
    assert code != 0 and "already a Hugging Face folder" in out
