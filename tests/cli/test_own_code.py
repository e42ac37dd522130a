"""Your own model and data from the CLI: class_path + init_args checked against the signature, several -c
files merged in order then --set, --print-config; the shipped example trains a class from the user's file."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from neural_arch.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_code"


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A directory holding the user's own module (named per test: imports are cached), as the cwd."""
    name = f"user_code_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text((EXAMPLE / "my_code.py").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, name


def write(path, tree):
    path.write_text(yaml.safe_dump(tree))
    return path


def blobs(module, tmp_path, **train):
    return {"name": "blobs", "run_dir": str(tmp_path / "run"),
            "model": {"class_path": f"{module}.MLP", "init_args": {"in_features": 2, "num_classes": 3}},
            "data": {"class_path": f"{module}.Blobs", "init_args": {"n": 120}, "val_fraction": 0.25, "prefetch": 0},
            "train": {"task": "classification", "batch_size": 16, "max_steps": 12, "eval_every": 6,
                      "checkpoint_every": 6, "grad_clip": None, **train},
            "scheduler": {"name": "none"}, "optimizer": {"lr": 0.01},
            "logging": {"progress": False, "sample_chars": 0, "plot": False}}


def test_trains_a_model_and_a_dataset_from_the_users_file(user_dir):
    tmp_path, module = user_dir
    code, out = cli("train", "-c", write(tmp_path / "c.yaml", blobs(module, tmp_path)))
    assert code == 0, out
    assert f"{module}.MLP (195 parameters) on {module}.Blobs" in out
    assert "90 training samples, 30 held out for validation" in out and "done: 12 steps" in out
    code, out = cli("evaluate", tmp_path / "run", "--metrics", "accuracy,f1_macro,loss")
    assert code == 0 and f"(step 12) on {module}.Blobs val: accuracy" in out, out


@pytest.mark.parametrize("change, message", [
    ({"model": {"init_args": {"in_features": 2, "num_classes": 3, "hidden": "two"}}},
     "model.init_args.hidden: must be a valid integer, unable to parse string as an integer (got 'two')"),
    ({"model": {"init_args": {"in_features": 2, "num_classes": 3, "widht": 3}}},
     "model.init_args: widht not accepted by MLP; it takes in_features, num_classes, hidden"),
    ({"model": {"init_args": {"in_features": 2}}}, "model.init_args: MLP requires num_classes"),
    ({"model": {"class_path": "no_such_module.Net"}}, "model.class_path: cannot import 'no_such_module'"),
    ({"data": {"class_path": "{module}.Nope"}}, "data.class_path: module '{module}' has no class 'Nope'"),
    ({"data": {"init_args": {"n": "many"}}}, "data.init_args.n: must be a valid integer"),
    ({"model": {"name": "mlp"}}, "model: give model.name or model.class_path, not both"),
])
def test_init_args_are_checked_with_one_line_errors(user_dir, change, message):
    tmp_path, module = user_dir
    tree = blobs(module, tmp_path)
    for section, values in change.items():
        tree[section] = {**tree[section], **yaml.safe_load(yaml.safe_dump(values).replace("{module}", module))}
    code, out = cli("train", write(tmp_path / "c.yaml", tree))
    assert code == 1 and message.replace("{module}", module) in out and "Traceback" not in out
    assert not (tmp_path / "run").exists()


def test_several_configs_merge_in_order_then_set(tmp_path):
    base = write(tmp_path / "base.yaml", {"name": "a", "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                                          "train": {"batch_size": 16}})
    small = write(tmp_path / "small.yaml", {"name": "b", "optimizer": {"lr": 0.05}})
    code, out = cli("train", "-c", base, "-c", small, "--set", "train.batch_size=4", "--print-config")
    assert code == 0, out
    cfg = yaml.safe_load(out)
    assert cfg["name"] == "b" and cfg["optimizer"]["name"] == "sgd" and cfg["optimizer"]["momentum"] == 0.9
    assert cfg["optimizer"]["lr"] == 0.05 and cfg["train"]["batch_size"] == 4
    assert cfg["logging"]["backends"] == ["jsonl"] and cfg["train"]["accumulate_grad_batches"] == 1  # resolved
    assert not list(tmp_path.glob("runs"))  # printing runs nothing


def test_the_shipped_example_config_validates():
    for name in ("blobs.yaml", "fashion_own_model.yaml"):
        code, out = cli("train", "-c", EXAMPLE / name, "--print-config")
        assert code == 0 and "class_path: my_code." in out, out
