"""Faults end cleanly, with real processes: a rank killed with SIGKILL ends the job (exit status non-zero,
the lost rank named) within 60 s, never a hang."""

import pytest
from test_ddp import run_ranks


@pytest.mark.slow
def test_killed_rank_ends_the_job_under_mpiexec():
    proc = run_ranks(3, "fault_worker.py", 1, timeout=60)  # a hang fails with TimeoutExpired
    assert proc.returncode != 0
    assert "rank 1" in proc.stdout + proc.stderr
    assert "finished" not in proc.stdout


@pytest.mark.slow
def test_watchdog_names_the_lost_rank_when_the_launcher_keeps_the_others_running():
    """With --enable-recovery Open MPI leaves the survivors alone (as some launchers do): then it is our
    watchdog that must stop each of them, naming the lost rank."""
    proc = run_ranks(3, "fault_worker.py", 1, timeout=60, mpiexec_args=["--enable-recovery"])
    assert proc.returncode == 1
    # the first survivor to notice says which rank was lost (the launcher may end the other one first)
    assert "neural-arch: lost rank 1" in proc.stderr, proc.stderr
    assert "finished" not in proc.stdout
