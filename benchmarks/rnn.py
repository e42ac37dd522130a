"""Recurrent suite: ``nn.LSTM`` and ``nn.GRU`` forward and forward+backward against torch's, float32,
at the word-language-model size (seq 35 x batch 20 x 2 layers x 200 hidden, input 200; issue 25's
target: torch / ours >= 1.0 for the LSTM's fwd+bwd). Both modules hold the same weights. The column
"steps split" is ours with the per-step products cut over the threads (``ops.recurrent.STEP_SPLIT_FLOPS``,
off by default): whether to turn it on is decided by this column on a quiet machine. The column "layer by
layer" is ours with ``ops.recurrent_wave.ENABLED`` off: an LSTM's layers one after the other instead of
each pair as a wavefront over two threads (it differs from "neural-arch" only at two threads or more).
``NEURAL_ARCH_RNN_BENCH_CHUNKS=5,10`` adds a column per chunk length: ours with
``ops.recurrent_wave.CHUNK_STEPS`` set to it (the wavefront's steps per round; default 7), forward and fwd+bwd.

    python -m benchmarks rnn              (``--rounds N``; ``NEURAL_ARCH_RNN_BENCH_SIZE=small`` for a smoke run)

``NEURAL_ARCH_RNN_BENCH_THREADS=n`` runs both frameworks on n threads (``na.set_num_threads``,
``torch.set_num_threads``): on a loaded machine, n = 1 keeps torch's OpenMP team from collapsing
and compares the arithmetic; the target itself is measured with each framework's default.
``NEURAL_ARCH_RNN_BENCH_CLOCK=cpu`` times each call by the process's CPU time instead of wall time
(with n = 1: what each framework computes, less the time the loaded machine kept it waiting).
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.harness import compare

SIZES = {"lm": (35, 20, 200, 200, 2), "small": (5, 3, 8, 8, 2)}  # seq, batch, input, hidden, layers


def _modules(kind: str, n_in: int, H: int, layers: int):
    import torch

    import neural_arch as na
    from neural_arch import nn

    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(n_in, H, num_layers=layers)
    ours = getattr(nn, kind)(n_in, H, num_layers=layers)
    ours.load_state_dict({k: na.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}, strict=True)
    return ours, ref


def run(rounds: int = 15):
    import torch

    import neural_arch as na

    T, B, n_in, H, layers = SIZES[os.environ.get("NEURAL_ARCH_RNN_BENCH_SIZE", "lm")]
    threads = int(os.environ.get("NEURAL_ARCH_RNN_BENCH_THREADS", "0"))
    clock = time.process_time if os.environ.get("NEURAL_ARCH_RNN_BENCH_CLOCK") == "cpu" else time.perf_counter
    if threads:
        na.set_num_threads(threads)
        torch.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((T, B, n_in)).astype(np.float32)
    results = []
    for kind in ("LSTM", "GRU"):
        ours, ref = _modules(kind, n_in, H, layers)
        name = f"{kind} {T}x{B} {layers} layers x {H}"
        for label, contenders in _contenders(ours, ref, na.tensor(x), torch.tensor(x)).items():
            results.append(compare(f"{name} {label}", contenders, rounds=rounds, clock=clock))
    return results


def _contenders(ours, ref, xn, xt):
    """{'fwd': {...}, 'fwd+bwd': {...}}: each framework's call, forward alone and a training step's fwd+bwd."""
    import torch

    import neural_arch as na

    def fwd_na():
        with na.no_grad():
            ours(xn)

    def fwd_torch():
        with torch.no_grad():
            ref(xt)

    def step_na():
        y, _ = ours(xn)
        y.sum().backward()
        ours.zero_grad()

    def step_na_split():
        from neural_arch.ops import recurrent

        recurrent.STEP_SPLIT_FLOPS = 1 << 21
        try:
            step_na()
        finally:
            recurrent.STEP_SPLIT_FLOPS = None

    def step_na_layer_by_layer():
        from neural_arch.ops import recurrent_wave

        recurrent_wave.ENABLED = False
        try:
            step_na()
        finally:
            recurrent_wave.ENABLED = True

    def step_torch():
        y, _ = ref(xt)
        y.sum().backward()
        ref.zero_grad()

    table = {"fwd": {"neural-arch": fwd_na, "torch": fwd_torch},
             "fwd+bwd": {"neural-arch": step_na, "torch": step_torch, "steps split": step_na_split,
                         "layer by layer": step_na_layer_by_layer}}
    for steps in filter(None, os.environ.get("NEURAL_ARCH_RNN_BENCH_CHUNKS", "").split(",")):
        table["fwd"][f"chunks {int(steps)}"] = _with_chunk_steps(fwd_na, int(steps))
        table["fwd+bwd"][f"chunks {int(steps)}"] = _with_chunk_steps(step_na, int(steps))
    return table


def _with_chunk_steps(call, steps: int):
    """``call`` run with the wavefront's chunks of ``steps`` steps (``ops.recurrent_wave.CHUNK_STEPS``)."""
    from neural_arch.ops import recurrent_wave

    def run():
        default = recurrent_wave.CHUNK_STEPS
        recurrent_wave.CHUNK_STEPS = steps
        try:
            call()
        finally:
            recurrent_wave.CHUNK_STEPS = default

    return run
