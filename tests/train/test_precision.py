"""Trainer(precision=...): Lightning's names, autocast around forward and loss, the GradScaler for
16-mixed, its state in checkpoints, and a bit-identical resume under mixed precision."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.amp import GradScaler
from neural_arch.config import load_config
from neural_arch.data import DataLoader, TensorDataset
from neural_arch.errors import ConfigError
from neural_arch.train import Classification, Trainer
from neural_arch.train.precision import MixedPrecision, make_precision

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 6)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)


@pytest.mark.parametrize("value, name", [("32", "32"), (32, "32"), ("32-true", "32"), ("bf16-mixed", "bf16-mixed"),
                                         ("bf16", "bf16-mixed"), ("16-mixed", "16-mixed"), (16, "16-mixed")])
def test_names_in_config_and_trainer(value, name):
    assert load_config(None, [f"train.precision={value}"]).train.precision == name
    assert make_precision(value).name == name


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=8-mixed"])
    with pytest.raises(ConfigError, match="precision='64' is not supported"):
        make_precision("64")
    assert make_precision("16-mixed").scaler is not None and make_precision("bf16-mixed").scaler is None


def make_trainer(seed, run_dir, max_steps, precision):
    na.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True, generator=na.Generator(seed))
    val = DataLoader(TensorDataset(X, Y), batch_size=30)
    return Trainer(model, opt, loader, val_loader=val, task=Classification(), max_steps=max_steps, run_dir=run_dir,
                   grad_clip=1.0, precision=precision)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_float32_master_weights(tmp_path, precision):
    t = make_trainer(0, tmp_path, 30, precision)
    before = t.evaluate()["loss"]
    after = t.fit()["loss"]
    assert after < before - 0.2
    assert all(p.dtype == na.float32 for p in t.model.parameters())
    assert t.precision.name == precision


def overflowing_fp16():
    """16-mixed whose first scale overflows float16 (so the scaler skips, backs off, then grows)."""
    return MixedPrecision("16-mixed", na.float16, GradScaler(init_scale=2.0**30, growth_interval=4))


def snapshot(trainer):
    return {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def test_scaler_skips_overflow_and_resume_is_bit_identical(tmp_path):
    straight = make_trainer(0, tmp_path / "straight", 24, overflowing_fp16())
    straight.fit()
    skipped = straight.precision.scaler_skipped_steps
    assert skipped > 0 and straight.skipped_steps == 0  # the scaler's skips, not non-finite halts
    assert straight.precision.scaler.get_scale() < 2.0**30

    first = make_trainer(0, tmp_path / "split", 11, overflowing_fp16())
    first.fit()
    resumed = make_trainer(5, tmp_path / "split", 24, overflowing_fp16())
    resumed.fit(resume_from=first.checkpoint_path)
    assert resumed.precision.scaler.state_dict() == straight.precision.scaler.state_dict()
    assert resumed.precision.scaler_skipped_steps == skipped
    a, b = snapshot(straight), snapshot(resumed)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_without_the_scaler_state_the_resumed_run_differs(tmp_path):
    """The control: a checkpoint's scaler state matters (a fresh scale skips again after resuming)."""
    straight = make_trainer(0, tmp_path / "straight", 24, overflowing_fp16())
    straight.fit()
    first = make_trainer(0, tmp_path / "split", 11, overflowing_fp16())
    first.fit()
    resumed = make_trainer(5, tmp_path / "split", 24, overflowing_fp16())
    resumed.load_checkpoint(first.checkpoint_path)
    resumed.precision = overflowing_fp16()  # as if the scaler's state had not been saved
    resumed.fit()
    assert resumed.precision.scaler.state_dict() != straight.precision.scaler.state_dict()
