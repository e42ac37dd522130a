"""One MPI rank for the fault tests (test_faults.py): allreduce in a loop; ``argv[1]`` names the rank
that kills itself with SIGKILL after a few rounds (-1: none)."""

import os
import signal
import sys
import time

import numpy as np

import neural_arch as na
import neural_arch.distributed as dist

dist.init_process_group("mpi")
victim = int(sys.argv[1])
t = na.tensor(np.ones(1000))
for step in range(10_000):
    if step == 20 and dist.get_rank() == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    if dist.get_rank() != victim:
        time.sleep(0.01)
print(f"rank {dist.get_rank()} finished", flush=True)
dist.destroy_process_group()
