"""``python -m neural_arch.compat SCRIPT [ARGS...]`` (or ``-m MODULE [ARGS...]``): run a PyTorch
script unchanged, with ``import torch`` resolving to neural-arch (see ``neural_arch.compat``)."""

from __future__ import annotations

import os
import runpy
import sys

from neural_arch.compat import install

USAGE = "usage: python -m neural_arch.compat SCRIPT [ARGS...]   or   python -m neural_arch.compat -m MODULE [ARGS...]"


def main(argv: list[str] | None = None) -> int:
    """Run the script (or module) as ``__main__`` with drop-in mode on; its arguments follow it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + "\n\nRuns a PyTorch script on neural-arch: `import torch` resolves to neural-arch.",
              file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    install()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        print(f"neural_arch.compat: no such script: {script}", file=sys.stderr)
        return 2
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
