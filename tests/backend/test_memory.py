"""The allocation policy (backend/memory.py): large freed blocks are reused, not faulted in again.

Each case runs in a fresh interpreter, because the policy is process-wide: applied at the first op
(never at import), and then for the rest of the process."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the policy is glibc's mallopt")

# Three 14 MB arrays alive at once, allocated, written and freed twenty times (a training step's pattern);
# prints the page faults of those twenty rounds and the policy in force.
_SCRIPT = """
import resource
import numpy as np
import neural_arch
from neural_arch.backend import memory

imported = memory.describe()
neural_arch.ones(2) + 1  # the first op applies the policy

def step():
    arrays = [np.empty(3_600_000, np.float32) for _ in range(3)]
    for a in arrays:
        a.fill(1.0)

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, memory.describe(), imported, sep="|")
"""


def _run(env_value=None):
    import os

    env = dict(os.environ)
    env.pop("NEURAL_ARCH_KEEP_MEMORY", None)
    if env_value is not None:
        env["NEURAL_ARCH_KEEP_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
    faults, state, imported = out.stdout.strip().split("|")
    assert imported == "not applied"  # importing changed nothing
    return int(faults), state


def test_freed_blocks_are_reused_without_page_faults():
    faults, state = _run()
    if "not glibc" in state:
        pytest.skip(state)
    assert "kept for reuse" in state
    assert faults < 200  # the same three blocks every round: nothing new to fault in


def test_env_var_turns_the_policy_off_and_faults_come_back():
    faults_off, state = _run("0")
    assert state == "off (NEURAL_ARCH_KEEP_MEMORY=0)"
    faults_on, _ = _run()
    # glibc's defaults hand two of the three arrays fresh pages every round (thousands of faults
    # even with 2 MB huge pages); the policy's run must be far below that
    assert faults_off > 10 * max(faults_on, 1)
