"""Peers suite: the MLP epoch in neural-arch, torch and the peers that are installed: the NumPy-based
MyGrad and HIPS autograd, and JAX (XLA-compiled, one jitted step; not NumPy-based, so not part of
issue #7's 2x target): MLP 784-100-10, ReLU, softmax cross-entropy, Adam, batch 128.

The peers have no optimizer library, so they use one NumPy Adam written here
(the same update as torch.optim.Adam); neural-arch and torch use their own.
Each timing is one whole epoch over Fashion-MNIST's 60,000 training images (469 shuffled batches,
every batch different): neural-arch and torch through their own DataLoaders, the peers (which have
none) through NumPy slices of one shuffled index per epoch.

Each NumPy framework runs with the BLAS threading it gets in a process of its own: neural-arch
with BLAS on one thread (its threading policy: its own threads split the products), the peers
with OpenBLAS's default of one thread per core. Each step sets that first (a ~1 us call), since
they share one process and one BLAS library.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare

STEPS_PER_EPOCH = 469
BATCH = 128


def _init(rng):
    k1, k2 = 1 / np.sqrt(784), 1 / np.sqrt(100)
    return [rng.uniform(-k1, k1, (784, 100)).astype(np.float32), rng.uniform(-k1, k1, 100).astype(np.float32),
            rng.uniform(-k2, k2, (100, 10)).astype(np.float32), rng.uniform(-k2, k2, 10).astype(np.float32)]


class _NumpyAdam:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.p, self.lr, self.b1, self.b2, self.eps, self.t = params, lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        for p, g, m, v in zip(self.p, grads, self.m, self.v):
            m += (1 - self.b1) * (g - m)
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (self.lr / (1 - self.b1**self.t)) * m / (np.sqrt(v) / np.sqrt(1 - self.b2**self.t) + self.eps)


def _jax_step(jax, jnp, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One jitted step: loss, gradients (jax.grad) and _NumpyAdam's update."""

    def loss(params, x, y):
        w1, c1, w2, c2 = params
        logits = jnp.maximum(x @ w1 + c1, 0.0) @ w2 + c2
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, y[:, None], 1)[:, 0])

    @jax.jit
    def step(params, m, v, t, x, y):
        grads = jax.grad(loss)(params, x, y)
        m = [mi + (1 - b1) * (g - mi) for mi, g in zip(m, grads)]
        v = [vi * b2 + (1 - b2) * g * g for vi, g in zip(v, grads)]
        params = [p - (lr / (1 - b1**t)) * mi / (jnp.sqrt(vi) / jnp.sqrt(1 - b2**t) + eps)
                  for p, mi, vi in zip(params, m, v)]
        return params, m, v

    return step


def _blas_setter():
    """set(n): the number of threads of the BLAS NumPy calls (None when it cannot be set)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    from neural_arch.backend import threads

    libs = threads._numpy_blas(ThreadpoolController())
    if not libs or not threads.blas_is_ours():
        return None

    def set_threads(n):
        for lib in libs:
            lib.set_num_threads(n)

    return set_threads


def run(rounds: int = 30):
    import os

    import torch

    import neural_arch as na
    from neural_arch import nn, optim

    set_blas = _blas_setter() or (lambda n: None)
    native = os.cpu_count() or 1

    from benchmarks.train import _fashion_arrays

    rng = np.random.default_rng(0)
    x_all, y_all = _fashion_arrays((784,))
    contenders = {}

    def numpy_batches():
        order = rng.permutation(len(x_all))
        for i in range(0, len(order), BATCH):
            take = order[i:i + BATCH]
            yield x_all[take], y_all[take]

    def epoch_of(step):
        def epoch():
            set_blas(native)  # the peers' BLAS as in a process of their own
            for xb, yb in numpy_batches():
                step(xb, yb)
        return epoch

    ours = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = optim.Adam(ours.parameters(), lr=1e-3)
    loader_a = na.data.DataLoader(na.data.TensorDataset(na.tensor(x_all), na.tensor(y_all)), batch_size=BATCH,
                                  shuffle=True)

    def epoch_ours():
        set_blas(1)
        for xa, ya in loader_a:
            opt.zero_grad()
            nn.functional.cross_entropy(ours(xa), ya).backward()
            opt.step()

    contenders["neural-arch"] = epoch_ours

    theirs = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    topt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    loader_t = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x_all), torch.tensor(y_all)), batch_size=BATCH, shuffle=True)

    def epoch_torch():
        for xt, yt in loader_t:
            topt.zero_grad()
            torch.nn.functional.cross_entropy(theirs(xt), yt).backward()
            topt.step()

    contenders["torch"] = epoch_torch

    try:
        import mygrad as mg

        params_mg = _init(rng)
        adam_mg = _NumpyAdam(params_mg)

        def step_mygrad(x, y):
            w1, b1, w2, b2 = (mg.tensor(p) for p in params_mg)
            logits = mg.matmul(mg.nnet.relu(mg.matmul(x, w1) + b1), w2) + b2
            loss = mg.nnet.softmax_crossentropy(logits, y)
            loss.backward()
            adam_mg.step([w1.grad, b1.grad, w2.grad, b2.grad])

        contenders["MyGrad"] = epoch_of(step_mygrad)
    except ImportError:
        pass

    try:
        import autograd.numpy as anp

        from autograd import grad as agrad

        params_ag = _init(rng)
        adam_ag = _NumpyAdam(params_ag)
        def loss_ag(params, x, y):
            w1, b1, w2, b2 = params
            logits = anp.dot(anp.maximum(anp.dot(x, w1) + b1, 0.0), w2) + b2
            m = anp.max(logits, axis=1, keepdims=True)
            lse = anp.log(anp.sum(anp.exp(logits - m), axis=1)) + m[:, 0]
            return anp.mean(lse - logits[np.arange(len(y)), y])

        grad_ag = agrad(loss_ag)

        def step_autograd(x, y):
            adam_ag.step(grad_ag(params_ag, x, y))

        contenders["HIPS autograd"] = epoch_of(step_autograd)
    except ImportError:
        pass

    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        jax = None
    if jax is not None:  # not NumPy-based: compiled by XLA (the step below is one jitted function)
        jax_step = _jax_step(jax, jnp)
        state = [[jnp.asarray(p) for p in _init(rng)], None, None, 0]
        state[1] = [jnp.zeros_like(p) for p in state[0]]
        state[2] = [jnp.zeros_like(p) for p in state[0]]

        def step_jax(x, y):
            state[3] += 1
            state[0], state[1], state[2] = jax_step(state[0], state[1], state[2], state[3], x, y)

        def epoch_jax():  # the last batch is smaller: XLA compiles that shape once, in the warm-up epoch
            epoch_of(step_jax)()
            jax.block_until_ready(state[0])

        contenders["JAX (jit)"] = epoch_jax

    # quiet=0.25: the peers' OpenBLAS workers spin ~0.1 s after their last product, and the next contender
    # starts once they sleep, as in a process of its own; an epoch is long enough to need no settling calls
    res = compare(f"MLP 784-100-10 Adam batch {BATCH}: one Fashion-MNIST epoch ({STEPS_PER_EPOCH} batches)",
                  contenders, rounds=rounds, warmup=1, quiet=0.25)
    set_blas(1)
    return [res]
