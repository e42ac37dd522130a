"""The documented Trainer: loss_fn alone, the Task protocol's defaults, typed errors, should_stop,
ReduceLROnPlateau fed the monitored metric, gradient accumulation, the precision argument."""

import numpy as np
import pytest

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn, optim
from neural_arch.data import DataLoader, TensorDataset
from neural_arch.errors import ConfigError
from neural_arch.train import Callback, Task, Trainer

rng = np.random.default_rng(2)
X = rng.normal(size=(32, 3))
Y = X @ np.array([[1.0], [-1.0], [0.5]])


def mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def make(batch_size=8, **kwargs):
    na.manual_seed(0)
    model = nn.Linear(3, 1, dtype=na.float64)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(X, Y), batch_size=batch_size)
    val = DataLoader(TensorDataset(X, Y), batch_size=10)
    return Trainer(model, opt, loader, val, **kwargs)


def test_a_plain_loss_fn_is_enough():
    t = make(loss_fn=mse, max_epochs=20)
    metrics = t.fit()
    assert t.step == 80 and t.epoch == 20
    with na.no_grad():
        expected = F.mse_loss(t.model(na.tensor(X)), na.tensor(Y)).item()
    assert metrics == {"loss": pytest.approx(expected, rel=1e-12)}  # averaged over items, not batches
    assert expected < 0.01


def test_a_task_with_only_loss_gets_the_protocol_defaults():
    class OnlyLoss:
        def loss(self, model, batch):
            return mse(model, batch)

    t = make(task=OnlyLoss(), max_steps=4)
    assert isinstance(t.task, Task) and t.task.unit == "samples" and t.task.batch_size((X[:5], Y[:5])) == 5
    assert set(t.fit()) == {"loss"}


def test_missing_pieces_are_typed_errors():
    with pytest.raises(ConfigError, match="task object has no loss"):
        make(task=object(), max_steps=1)
    with pytest.raises(ConfigError, match="give a loss_fn"):
        make(max_steps=1)
    with pytest.raises(ConfigError, match="precision='8-mixed' is not supported; use one of 32, bf16-mixed"):
        make(loss_fn=mse, max_steps=1, precision="8-mixed")
    with pytest.raises(ConfigError, match="on_nonfinite='ignore' is not one of halt, skip"):
        make(loss_fn=mse, max_steps=1, on_nonfinite="ignore")
    assert make(loss_fn=mse, max_steps=1, precision="32").precision.name == "32"


def test_a_callback_stops_training_through_should_stop(tmp_path):
    class StopAt3(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.step == 3:
                trainer.should_stop = True

    t = make(loss_fn=mse, max_steps=100, callbacks=[StopAt3()], run_dir=tmp_path)
    t.fit()
    assert t.step == 3 and not t.interrupted
    assert na.load(tmp_path / "checkpoints" / "last.safetensors")["step"] == 3


def test_reduce_lr_on_plateau_receives_the_validation_metric():
    t = make(loss_fn=mse, max_steps=12, val_every=2)
    t.scheduler = optim.lr_scheduler.ReduceLROnPlateau(t.optimizer, mode="min", factor=0.5, patience=0)
    seen = []
    t.callbacks.append(type("Spy", (Callback,), {"on_eval_end": lambda self, tr, m: seen.append(
        (m["loss"], tr.optimizer.param_groups[0]["lr"]))})())
    t.optimizer.param_groups[0]["lr"] = 5.0  # diverges: the loss grows, so the lr must be cut
    with np.errstate(all="ignore"):
        t.fit()
    assert seen[0][1] == 5.0 and seen[1][1] == 2.5  # one bad evaluation (patience 0) halves it
    with pytest.raises(ConfigError, match="ReduceLROnPlateau steps on a validation metric"):
        Trainer(t.model, t.optimizer, t.train_loader, loss_fn=mse, max_steps=1,
                scheduler=optim.lr_scheduler.ReduceLROnPlateau(t.optimizer))


def test_gradient_accumulation_equals_the_larger_batch():
    big = make(batch_size=16, loss_fn=mse, max_steps=4)
    big.fit()
    small = make(batch_size=8, loss_fn=mse, max_steps=4, accumulate_grad_batches=2)
    small.fit()
    assert small.epoch == 2 and big.epoch == 2
    np.testing.assert_allclose(small.model.weight.detach().numpy(), big.model.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(small.model.bias.detach().numpy(), big.model.bias.detach().numpy(), rtol=1e-12)


def test_a_short_last_group_still_steps():
    t = make(batch_size=8, loss_fn=mse, max_epochs=2, accumulate_grad_batches=3)  # 4 batches: groups 3 + 1
    t.fit()
    assert t.steps_per_epoch == 2 and t.step == 4 and t.epoch == 2


def test_steps_per_epoch_defines_an_epoch_for_long_loaders():
    t = make(loss_fn=mse, max_epochs=3, steps_per_epoch=3)  # the loader's pass is 4 batches
    evals = []
    t.callbacks.append(type("Spy", (Callback,), {"on_eval_end": lambda self, tr, m: evals.append(tr.step)})())
    t.fit()
    assert t.step == 9 and t.epoch == 3 and evals == [3, 6, 9]


class Batches:
    """An iterable of batches without len(): a new pass each iter(), like a streaming loader."""

    def __init__(self, n_batches, batch_size=8):
        self.n, self.b = n_batches, batch_size

    def __iter__(self):
        for i in range(self.n):
            rows = slice(i * self.b, (i + 1) * self.b)
            yield na.tensor(X[rows]), na.tensor(Y[rows])


def test_a_loader_without_len_counts_epochs_where_each_pass_ends():
    na.manual_seed(0)
    model = nn.Linear(3, 1, dtype=na.float64)
    evals = []
    spy = type("Spy", (Callback,), {"on_eval_end": lambda self, tr, m: evals.append((tr.step, tr.epoch))})()
    t = Trainer(model, optim.SGD(model.parameters(), lr=0.1), Batches(3), Batches(2), loss_fn=mse, max_steps=7,
                accumulate_grad_batches=2, callbacks=[spy])  # passes of 3 batches: steps of 2 + 1
    t.fit()
    assert t.step == 7 and evals == [(2, 1), (4, 2), (6, 3), (7, 3)]
    with pytest.raises(ConfigError, match="has no len\\(\\); give max_steps or steps_per_epoch"):
        Trainer(model, t.optimizer, Batches(3), loss_fn=mse, max_epochs=1)
    with pytest.raises(ConfigError, match="yielded no batches"):
        Trainer(model, t.optimizer, Batches(0), loss_fn=mse, max_steps=1).fit()
