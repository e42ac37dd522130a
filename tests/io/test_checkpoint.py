"""Training checkpoints: what they hold, and a clear CheckpointError for one that does not fit."""

import numpy as np
import pytest

import neural_arch as na
import neural_arch.nn as nn
from neural_arch import optim
from neural_arch.errors import CheckpointError
from neural_arch.io import load_checkpoint, save_checkpoint


def setup(width=4):
    model = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))
    opt = optim.Adam(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def take_steps(model, opt, sched, n=3):
    for _ in range(n):
        loss = model(na.randn(5, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_round_trip_restores_everything(tmp_path):
    model, opt, sched = setup()
    take_steps(model, opt, sched)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched, step=3, metadata={"note": "hi"})
    expected_rng = na.randn(4).numpy()  # what the default generator draws next

    model2, opt2, sched2 = setup()
    ckpt = load_checkpoint(path, model2, opt2, sched2)
    assert ckpt["step"] == 3 and ckpt["metadata"] == {"note": "hi"}
    assert np.array_equal(na.randn(4).numpy(), expected_rng)
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), model2.state_dict()[k].numpy())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.05
    assert sched2.last_epoch == sched.last_epoch == 3
    take_steps(model, opt, sched, 2)
    na.manual_seed(0)
    take_steps(model2, opt2, sched2, 2)  # different data draws, same optimizer state: still runs
    assert all(np.isfinite(p.detach().numpy()).all() for p in model2.parameters())


def test_weights_only_file_loads_into_a_model(tmp_path):
    model, _, _ = setup()
    na.save(model.state_dict(), tmp_path / "w.safetensors")
    model2, opt2, _ = setup()
    ckpt = load_checkpoint(tmp_path / "w.safetensors", model2)
    assert ckpt["step"] == 0
    assert np.array_equal(model2[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "w.safetensors", model2, opt2)


def test_wrong_shapes_are_named(tmp_path):
    model, opt, sched = setup(width=4)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched)
    other, _, _ = setup(width=5)
    before = other[0].weight.detach().numpy().copy()
    with pytest.raises(CheckpointError, match=r"'0.weight' has shape \(4, 3\) in the file but \(5, 3\) in the model"):
        load_checkpoint(path, other)
    assert np.array_equal(other[0].weight.detach().numpy(), before)  # nothing was half-loaded


def test_missing_and_unexpected_keys_are_named(tmp_path):
    model, opt, sched = setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched)
    bigger = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="missing keys: 3.weight, 3.bias"):
        load_checkpoint(path, bigger)
    smaller = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(CheckpointError, match="unexpected keys: 2.weight, 2.bias"):
        load_checkpoint(path, smaller)


def test_optimizer_state_of_another_model(tmp_path):
    model, opt, sched = setup()
    take_steps(model, opt, sched, 1)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched)
    other = nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="optimizer"):
        load_checkpoint(path, optimizer=optim.Adam(other.parameters()))


def test_unknown_version(tmp_path):
    model, opt, sched = setup()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched)
    state = na.load(path)
    state["version"] = 99
    na.save(state, path)
    with pytest.raises(CheckpointError, match="checkpoint version 99"):
        load_checkpoint(path, model)
