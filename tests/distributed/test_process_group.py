"""The process-group API without a launcher: one process behaves as rank 0 of 1, collectives say what to do."""

import pytest

import neural_arch as na
import neural_arch.distributed as dist
from neural_arch.distributed.launch import find_mpiexec, mpiexec_command, threads_per_rank
from neural_arch.errors import DistributedError


def test_single_process_is_rank_0_of_1():
    assert not dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    assert dist.is_available()


def test_collectives_without_a_group_say_how_to_start_one():
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.all_reduce(na.ones(2))
    with pytest.raises(DistributedError, match="init_process_group"):
        na.nn.parallel.DistributedDataParallel(na.nn.Linear(2, 2))
    assert issubclass(DistributedError, RuntimeError)


def test_unknown_backend_is_refused():
    with pytest.raises(DistributedError, match="'nccl' is not available"):
        dist.init_process_group("nccl")


def test_launcher_prefers_the_mpiexec_beside_python_and_shares_the_cores():
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        assert find_mpiexec() == str(beside)
    argv, _ = mpiexec_command(3)
    assert argv[-2:] == ["-n", "3"]
    assert threads_per_rank(10**6) == 1
    with pytest.raises(DistributedError, match="--nproc"):
        mpiexec_command(0)
