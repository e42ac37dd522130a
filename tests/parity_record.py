"""The record of which torch names passing parity comparisons used as their reference.

``parity.check`` runs the torch side of each comparison under ``reference_names.Recorder``; when the
whole comparison has passed, the names it saw become the current test's *pending* claims (``claim``).
A comparison written by hand runs its torch side under ``parity.reference()``: the names it saw are only
*witnessed* (``witness``) until a value comparison of the same test passes (``parity.compare`` calls
``confirm``), so building a torch object or calling a function without comparing what it gave claims nothing.
``conftest.py`` keeps a test's claims only if the test then passes, and at the end of the session
merges them into ``RECORD`` (``build/parity-record.json``, not committed):

    {"written": "...", "tests": {"tests/ops/test_x.py::test_y[...]": ["torch.add", "torch.Tensor.sum"]}}

A test that runs again replaces its old entry, so a claim disappears with the comparison that made it;
``benchmarks/coverage.py`` reads the file and drops an entry whose test function no longer exists.
A name is therefore "parity-tested" only if an existing test called it as the reference of a
comparison that passed. (No torch import here: conftest loads this in every session.)
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "build" / "parity-record.json"

pending: dict[str, set[str]] = {}  # test id -> names its passed comparisons used (kept if the test passes)
witnessed: dict[str, set[str]] = {}  # test id -> names its reference code used, no comparison passed since


def current_test() -> str | None:
    """pytest's id of the running test (None outside pytest)."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    return current.rsplit(" ", 1)[0] if current else None


def claim(names: set[str]) -> None:
    """Names a comparison that has just passed used as its reference: pending until the test passes."""
    test = current_test()
    if test is not None and names:
        pending.setdefault(test, set()).update(names)


def witness(names: set[str]) -> None:
    """Names a hand-written reference used: claimed by the next passing comparison of the test (``confirm``)."""
    test = current_test()
    if test is not None and names:
        witnessed.setdefault(test, set()).update(names)


def confirm() -> None:
    """A comparison of the current test has passed: what its reference code used so far becomes a claim."""
    test = current_test()
    if test is not None:
        claim(witnessed.pop(test, set()))


def merge(ran: set[str], passed: dict[str, set[str]], path: Path = RECORD) -> None:
    """Update the record: the tests that ran lose their old entries, the passing ones get their claims."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest runs finishing together merge one after the other
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = {"tests": {}}
        tests = {t: n for t, n in record.get("tests", {}).items() if t not in ran}
        tests.update({t: sorted(n) for t, n in passed.items() if n})
        record = {"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tests": dict(sorted(tests.items()))}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)
