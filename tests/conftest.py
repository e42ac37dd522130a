import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so tests can `from parity import check`


@pytest.fixture(autouse=True)
def _seed():
    import neural_arch as na

    na.manual_seed(0)
    np.random.seed(0)
    yield


def _jit_off_on_purpose() -> bool:
    return os.environ.get("NEURAL_ARCH_JIT", "1").strip().lower() in ("0", "false", "no", "off")


@pytest.fixture
def jit():
    """The numba kernels on for this test. numba is a core dependency: a missing or broken numba
    fails the test; only a run that sets NEURAL_ARCH_JIT=0 on purpose skips it."""
    from neural_arch.backend import kernels

    if _jit_off_on_purpose():
        pytest.skip("NEURAL_ARCH_JIT=0: the kernels are off on purpose")
    with kernels.enabled(True):  # ImportError without numba: the test fails
        yield kernels


@pytest.fixture(params=["kernel", "twin"])
def impl(request):
    """Runs a test once on the numba kernels and once on their NumPy twins (``backend.kernels``'s
    dispatch decides for every family function); the kernel run follows the ``jit`` fixture's rules."""
    from neural_arch.backend import kernels

    if request.param == "kernel":
        request.getfixturevalue("jit")
    with kernels.enabled(request.param == "kernel"):
        yield request.param


# -- the parity record (tests/parity_record.py): which torch names passing comparisons used ---------------
_ran: set[str] = set()
_passed: dict[str, set[str]] = {}


def pytest_runtest_logreport(report):
    import parity_record

    _ran.add(report.nodeid)
    claims = parity_record.pending.pop(report.nodeid, set()) if report.when == "call" else set()
    if report.when != "setup":
        parity_record.witnessed.pop(report.nodeid, None)  # used, never compared after: no claim
    if report.when == "call" and report.passed and claims:
        _passed[report.nodeid] = claims
    elif report.failed:
        _passed.pop(report.nodeid, None)  # a failing teardown takes the test's claims back


def pytest_sessionfinish(session, exitstatus):
    import parity_record

    if _ran:
        try:
            parity_record.merge(_ran, _passed)
        except OSError as e:  # a read-only checkout: the tests still count, the report just has no new record
            print(f"\nparity record not written ({e}); the coverage report's parity column will not show this run")
