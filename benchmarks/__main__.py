"""``python -m benchmarks [suite ...]``: run suites, print a Markdown table per suite."""

from __future__ import annotations

import argparse
import importlib

from benchmarks.harness import machine, table

SUITES = ["overhead", "ops", "layers", "conv_algos", "optim", "train", "peers", "memory", "generation", "jit", "scan", "compile",
           "isolation", "onnx", "distributed", "models", "rnn"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", default=SUITES, help=f"any of {SUITES}")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds per workload")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    from neural_arch.backend.threads import blas_warning  # noqa: PLC0415

    if blas_warning():  # our matmuls would be measured on a kernel older than the CPU's
        print(f"WARNING: {blas_warning()}; run as `env -u OPENBLAS_CORETYPE python -m benchmarks` "
              "(`make bench` does) to measure the kernel OpenBLAS picks for this CPU\n")
    for name in args.suites:
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            print(f"## {name}: not available ({exc})\n")
            continue
        results = mod.run(**({"rounds": args.rounds} if args.rounds else {}))
        body = results if isinstance(results, str) else table(results)  # (coverage returns its own table)
        print(f"## {name}\n\n{body}\n", flush=True)


if __name__ == "__main__":
    main()
