"""Forward-only comparison behind `/v1/embeddings`: all-MiniLM-L6-v2 on the serve load test's batches.

The serve load test's worker runs the encoder nearly all of the time, so its throughput ratio is the ratio
of these forwards. This suite builds the batches that worker sees (32 Shakespeare excerpts of 20-300
characters, as ``benchmarks.serve`` sends them, grouped by length as ``runners.by_length`` groups them) and
times, interleaved in one process (``harness.compare``):

- ``neural-arch``: ``runners.embed_batch`` (tokenizer, encoder, mean pooling, normalisation), what our
  server runs per group;
- ``torch``: sentence-transformers' tokenize + forward under ``inference_mode``, what the baseline runs.

Each contender processes the groups its server would run per call (the same texts: each server cuts a batch
with its model's ``ServedModel.forward_cost``: ours, which skips the padding in all but attention, into fewer
forwards than torch's, which computes it; ``--same-groups`` gives both torch's groups); the ratio (torch /
ours > 1: we are faster) is the forward-only analogue of the load test's embeddings ratio.

    python -m benchmarks.serve_forward                 # 8 batches of 32, grouped as the server groups them
    python -m benchmarks.serve_forward --no-length-groups   # each batch padded to its longest
    python -m benchmarks.serve_forward --threads 1          # one thread each; also the thread's CPU time
    python -m benchmarks.serve_forward --same-groups        # both run the groups of a model that pads
"""

from __future__ import annotations

import argparse
import time

from benchmarks.harness import Result, compare


def batches(n_batches: int, batch_size: int, length_groups: bool, seed: int = 0,
            forward_cost: float = 96.0) -> list[list[str]]:
    """The lists of texts the server's worker runs one forward each on, for ``n_batches`` full batches."""
    from benchmarks.serve import _requests
    from neural_arch.serve.runners import length_groups as cut

    bodies = _requests("embeddings", seed)
    out = []
    for _ in range(n_batches):
        texts = [next(bodies)[1]["input"] for _ in range(batch_size)]
        if not length_groups:
            out.append(texts)
            continue
        texts.sort(key=len)
        points = cut([len(t) for t in texts], forward_cost)
        out += [texts[a:b] for a, b in zip(points, points[1:])]
    return out


def contenders(groups: list[list[str]], ours_groups: list[list[str]] | None = None) -> dict:
    """One call of each runs every group once (ours: ``ours_groups`` when given, the same texts)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from benchmarks.serve_backends import MINILM
    from neural_arch.serve import load_served_model
    from neural_arch.serve.runners import embed_batch

    path = __import__(MINILM).get_model_path()
    ours = load_served_model(path).model
    ours_groups = groups if ours_groups is None else ours_groups
    st = SentenceTransformer(str(path), device="cpu")
    tokenize = st.preprocess if hasattr(st, "preprocess") else st.tokenize

    def run_ours():
        for g in ours_groups:
            embed_batch(ours, g)

    def run_torch():
        with torch.inference_mode():
            for g in groups:
                st(tokenize(g))["sentence_embedding"].numpy()

    return {"neural-arch": run_ours, "torch": run_torch}


def run(rounds: int = 10, n_batches: int = 8, batch_size: int = 32, length_groups: bool = True, threads: int = 0,
        same_groups: bool = False, **_) -> list[Result]:
    """``threads``: both frameworks' thread count (0: each one's default, one per core)."""
    from neural_arch.serve.loading import SKIPPED_PADDING_FORWARD_COST
    if threads:
        import torch

        import neural_arch as na

        torch.set_num_threads(threads)
        na.set_num_threads(threads)
    groups = batches(n_batches, batch_size, length_groups)
    ours = groups if same_groups else batches(n_batches, batch_size, length_groups,
                                              forward_cost=SKIPPED_PADDING_FORWARD_COST)
    name = (f"MiniLM-L6 embed, {n_batches} batches of {batch_size} ({len(ours)} forwards ours, {len(groups)} torch)"
            + (f", {threads} thread{'s' * (threads > 1)}" if threads else ""))
    runs = contenders(groups, ours)
    if threads != 1:
        return [compare(name, runs, rounds=rounds, warmup=2)]
    # One thread each: the work runs on the calling thread in both frameworks, so its CPU time is the
    # cost of the work itself, much less disturbed than the wall time by other jobs on a busy machine.
    cpu = {who: [] for who in runs}

    def timed(who, fn):
        def call():
            t0 = time.thread_time()
            fn()
            cpu[who].append(time.thread_time() - t0)
        return call

    wall = compare(name, {who: timed(who, fn) for who, fn in runs.items()}, rounds=rounds, warmup=2)
    return [wall, Result(f"{name}: CPU time of the thread", {who: t[2:] for who, t in cpu.items()})]


def main() -> None:
    from benchmarks.harness import machine, table

    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_forward", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-length-groups", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="both frameworks' threads (0: their defaults)")
    p.add_argument("--same-groups", action="store_true", help="ours runs torch's groups (default: its own, fewer)")
    a = p.parse_args()
    print(f"machine: {machine()}\n")
    results = run(a.rounds, a.batches, a.batch_size, not a.no_length_groups, a.threads, a.same_groups)
    print(f"\n## serve_forward\n\n{table(results)}\n")


if __name__ == "__main__":
    main()
