"""Runs that survive: an exception leaves an emergency checkpoint, non-finite steps are skipped or halt with
the last finite state saved, files honour the umask."""

import os
import stat

import numpy as np
import pytest

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn, optim
from neural_arch.data import DataLoader, TensorDataset
from neural_arch.errors import NumericalError
from neural_arch.models.hf import save_pretrained_dir
from neural_arch.train import Trainer

rng = np.random.default_rng(3)
X = rng.normal(size=(40, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


def make(loss_fn, run_dir, **kwargs):
    na.manual_seed(0)
    model = nn.Linear(3, 2)
    loader = DataLoader(TensorDataset(X, Y), batch_size=8)
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1), loader, loss_fn=loss_fn, run_dir=run_dir,
                   **kwargs)


def ce(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def test_an_exception_saves_an_emergency_checkpoint_then_propagates(tmp_path):
    calls = []

    def flaky(model, batch):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("the data server went away")
        return ce(model, batch)

    t = make(flaky, tmp_path, max_steps=10)
    with pytest.raises(RuntimeError, match="the data server went away") as info:
        t.fit()
    path = tmp_path / "checkpoints" / "emergency.safetensors"
    assert any(str(path) in note for note in info.value.__notes__)
    saved = na.load(path)
    assert saved["step"] == 3
    for k, v in t.model.state_dict().items():
        assert np.array_equal(saved["model"][k].numpy(), v.detach().numpy())


def poisoned(bad_calls):
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = ce(model, batch)
        return loss * float("nan") if len(calls) in bad_calls else loss
    return loss_fn


def test_skip_drops_non_finite_steps_and_counts_them(tmp_path):
    t = make(poisoned({2, 4}), tmp_path, max_steps=6, on_nonfinite="skip")
    with np.errstate(invalid="ignore"):
        t.fit()
    assert t.step == 6 and t.skipped_steps == 2
    assert all(np.isfinite(p.detach().numpy()).all() for p in t.model.parameters())


def test_skip_halts_after_k_in_a_row_with_the_last_finite_state_saved(tmp_path):
    t = make(poisoned({3, 4, 5}), tmp_path, max_steps=20, on_nonfinite="skip", max_nonfinite=3)
    with np.errstate(invalid="ignore"), pytest.raises(NumericalError, match=r"loss is nan at step 3 \(3 steps in a row\)"):
        t.fit()
    saved = na.load(tmp_path / "checkpoints" / "last.safetensors")
    assert saved["step"] == 2 and t.skipped_steps == 2
    assert all(np.isfinite(v.numpy()).all() for v in saved["model"].values())


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_checkpoints_and_pretrained_folders_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        t = make(ce, tmp_path, max_steps=1)
        t.fit()
        save_pretrained_dir(tmp_path / "pretrained", {"w": np.zeros(3, np.float32)}, {"model_type": "x"})
    finally:
        os.umask(previous)
    for path in (tmp_path / "checkpoints" / "last.safetensors", tmp_path / "pretrained" / "model.safetensors",
                 tmp_path / "pretrained" / "config.json"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
