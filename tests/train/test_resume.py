"""Resuming from a checkpoint is bit-identical to never having stopped.

N steps, checkpoint, a fresh process state (new model, optimizer, scheduler,
loader, differently seeded), resume, N more steps == 2N uninterrupted steps,
down to the last bit of every parameter and optimizer moment. Dropout and
shuffling are on, so the default generator and the loader's generator must both
be restored for this to hold.
"""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.data import DataLoader, TensorDataset
from neural_arch.train import Classification, Trainer

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 6)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)


def make_trainer(seed, run_dir, max_steps, prefetch):
    na.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=5, total_steps=40)
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True, drop_last=False,
                        generator=na.Generator(seed), prefetch=prefetch)  # 8 batches per epoch, the last of 4
    return Trainer(model, opt, loader, task=Classification(), scheduler=sched, max_steps=max_steps,
                   run_dir=run_dir, grad_clip=1.0)


def snapshot(trainer):
    params = {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}
    moments = {f"{i}.{k}": np.asarray(v.numpy() if hasattr(v, "numpy") else v).copy()
               for i, s in trainer.optimizer.state_dict()["state"].items() for k, v in s.items()}
    return params, moments


@pytest.mark.parametrize("n, prefetch", [(11, 2), (8, 0), (13, 0)])  # mid-epoch, epoch boundary, mid-epoch
def test_resume_is_bit_identical(tmp_path, n, prefetch):
    straight = make_trainer(0, tmp_path / "straight", 2 * n, prefetch)
    straight.fit()
    rng_after_straight = na.backend.default_generator.get_state()

    first = make_trainer(0, tmp_path / "split", n, prefetch)
    first.fit()
    ckpt = first.checkpoint_path
    na.randn(100)  # disturb the default generator: the checkpoint must put it back

    resumed = make_trainer(123, tmp_path / "split", 2 * n, prefetch)  # other init, other shuffling seed
    resumed.fit(resume_from=ckpt)
    assert resumed.step == straight.step == 2 * n
    (p_a, m_a), (p_b, m_b) = snapshot(straight), snapshot(resumed)
    assert p_a.keys() == p_b.keys() and m_a.keys() == m_b.keys()
    for k in p_a:
        assert np.array_equal(p_a[k], p_b[k]), k  # bit for bit, no tolerance
    for k in m_a:
        assert np.array_equal(m_a[k], m_b[k]), k
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    assert na.backend.default_generator.get_state() == rng_after_straight  # dropout drew the same numbers


def test_without_restoring_state_the_runs_differ(tmp_path):
    """The control: resuming weights only (no RNG, no loader state) does not reproduce the run."""
    straight = make_trainer(0, tmp_path / "a", 22, 0)
    straight.fit()
    first = make_trainer(0, tmp_path / "b", 11, 0)
    first.fit()
    other = make_trainer(123, tmp_path / "c", 22, 0)
    na.io.load_checkpoint(first.checkpoint_path, other.model, other.optimizer, other.scheduler, restore_rng=False)
    other.step = 11
    other.fit()
    diffs = [not np.array_equal(a, b) for a, b in zip(snapshot(straight)[0].values(), snapshot(other)[0].values())]
    assert any(diffs)
