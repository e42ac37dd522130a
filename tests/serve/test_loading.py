"""What `neural-arch serve MODEL` makes of each kind of MODEL: run directories, checkpoints, Hugging Face folders."""

import pytest
import yaml

from neural_arch.config import load_config
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.models import GPT2LMHeadModel
from neural_arch.serve import load_served_model


def _train_char_run(tmp_path, model: dict):
    from neural_arch.cli.main import run_training

    cfg = {"name": "tiny", "seed": 0, "run_dir": str(tmp_path / "run"), "model": model,
           "data": {"name": "tinyshakespeare", "block_size": 16, "val_windows": 8, "prefetch": 0},
           "optimizer": {"name": "adamw", "lr": 0.01}, "scheduler": {"name": "none"},
           "train": {"batch_size": 4, "max_steps": 2, "eval_every": 2, "checkpoint_every": 2},
           "logging": {"progress": False, "plot": False, "sample_chars": 0}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert run_training(load_config(tmp_path / "cfg.yaml", ()), echo=lambda *a: None) == 0
    return tmp_path / "run"


def test_a_gpt2_run_directory_serves_completions_with_its_tokenizer(tmp_path):
    run = _train_char_run(tmp_path, {"name": "gpt2", "kwargs": {"n_layer": 1, "n_head": 2, "n_embd": 16}})
    served = load_served_model(run)
    assert served.kind == "completions" and served.name == "run"
    assert isinstance(served.model, GPT2LMHeadModel) and not served.model.training
    assert served.tokenizer.decode(served.tokenizer.encode("ROMEO:")) == "ROMEO:"
    from_checkpoint = load_served_model(run / "checkpoints" / "last.safetensors", name="gpt")
    assert from_checkpoint.kind == "completions" and from_checkpoint.name == "gpt"


def test_models_without_a_cache_are_refused_by_name(tmp_path):
    run = _train_char_run(tmp_path, {"name": "char_mlp", "kwargs": {"context": 4, "n_embd": 8, "hidden": 16}})
    with pytest.raises(ConfigError, match="char_mlp model; /v1/completions serves .* \\(gpt2, modern\\)"):
        load_served_model(run)


def test_a_classifier_checkpoint_serves_classify(classifier_run):
    served = load_served_model(classifier_run / "checkpoints" / "last.safetensors")
    assert served.kind == "classify" and served.labels[0] == "T-shirt/top" and served.image_size == (28, 28)


def test_paths_that_are_not_models(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_served_model(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="neither a Hugging Face-layout directory"):
        load_served_model(tmp_path)
