"""Run configs: YAML + schema, --set overrides, errors that name the field and the allowed values."""

from pathlib import Path

import pytest

from neural_arch.config import RunConfig, apply_override, dump_config, load_config, read_yaml
from neural_arch.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_default_yaml_is_the_schema_default():
    assert load_config(CONFIGS / "default.yaml") == RunConfig() == load_config(None)


@pytest.mark.parametrize("name", ["fashion_mlp.yaml", "fashion_cnn.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.data.name == "fashion_mnist" and cfg.train.epochs and cfg.train.max_steps is None


def test_fashion_mlp_is_the_issue_spec():
    cfg = load_config(CONFIGS / "fashion_mlp.yaml")
    assert (cfg.model.name, cfg.model.kwargs["hidden"], cfg.optimizer.name, cfg.train.epochs) == ("mlp", [100],
                                                                                                  "adamw", 10)


def test_dump_and_reload_round_trip(tmp_path):
    cfg = load_config(None, ["optimizer.lr=3e-4", "model.kwargs.n_layer=3", "train.epochs=2"])
    (tmp_path / "c.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("override, path, value", [
    ("optimizer.lr=3e-4", ("optimizer", "lr"), 3e-4),  # YAML 1.1 alone would read a string
    ("train.batch_size=64", ("train", "batch_size"), 64),
    ("optimizer.betas=[0.9, 0.95]", ("optimizer", "betas"), (0.9, 0.95)),
    ("run_dir=runs/x", ("run_dir",), "runs/x"),
    ("train.grad_clip=null", ("train", "grad_clip"), None),
    ("logging.plot=false", ("logging", "plot"), False),
    ("name=1e", ("name",), "1e"),
])
def test_overrides_are_yaml_scalars(override, path, value):
    cfg = load_config(None, [override])
    got = cfg
    for p in path:
        got = getattr(got, p)
    assert got == value and type(got) is type(value)


def test_epochs_replace_the_default_steps_but_not_explicit_ones():
    assert load_config(None, ["train.epochs=3"]).train.max_steps is None
    with pytest.raises(ConfigError, match="train: give train.epochs or train.max_steps, not both"):
        load_config(None, ["train.epochs=3", "train.max_steps=10"])
    with pytest.raises(ConfigError, match="give train.epochs or train.max_steps"):
        load_config(None, ["train.max_steps=null"])


@pytest.mark.parametrize("override, message", [
    ("optimizer.name=adamx", "optimizer.name: 'adamx' is not one of adamw, adam, sgd, lion, rmsprop, adagrad"),
    ("data.name=cifar", "data.name: 'cifar' is not one of tinyshakespeare, fashion_mnist, mnist"),
    ("scheduler.name=cosin", "scheduler.name: 'cosin' is not one of none, cosine, warmup_cosine, step, onecycle"),
    ("train.batch_size=-1", "train.batch_size: must be greater than 0 (got -1)"),
    ("optimizer.lr=fast", "optimizer.lr: must be a valid number"),
    ("optimiser.lr=1", "optimiser: unknown field; the fields here are name, seed, run_dir, model, data"),
    ("train.lr=1", "train.lr: unknown field; the fields here are batch_size, epochs, max_steps"),
    ("seed=1.5", "seed: must be a valid integer"),
])
def test_errors_name_the_dotted_path(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)


def test_all_problems_are_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optimizer: {name: adamx, lr: -1}\ntrain: {batch_size: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path} is not a valid run config:")
    for part in ("optimizer.name:", "optimizer.lr:", "train.batch_size:"):
        assert part in text


@pytest.mark.parametrize("content, match", [
    ("a: [1, 2", "is not valid YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
])
def test_bad_yaml_files(tmp_path, content, match):
    (tmp_path / "c.yaml").write_text(content)
    with pytest.raises(ConfigError, match=match):
        read_yaml(tmp_path / "c.yaml")


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == RunConfig()


@pytest.mark.parametrize("item, match", [
    ("optimizer.lr", "expected key.sub=value"),
    ("=3", "expected key.sub=value"),
    ("seed.x=1", "'seed' is a value, not a section"),
    ("a=[1", "not valid YAML"),
])
def test_bad_overrides(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_override({"seed": 1}, item)
