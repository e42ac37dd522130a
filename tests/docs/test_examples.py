"""Every script in examples/ runs to the end at a small size (``NEURAL_ARCH_EXAMPLE_SMOKE=1``).

A script is any ``examples/*.py`` that no other example imports (``fashion_common.py`` is a helper);
a new one is picked up automatically and must honour the variable (a few steps on a few samples, and
no positional argument needed), itself or through the helper it imports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SMOKE_VAR = "NEURAL_ARCH_EXAMPLE_SMOKE"


def _local_imports(source: str) -> set[str]:
    names = set(re.findall(r"^\s*(?:from|import)\s+(\w+)", source, re.M))
    return {n for n in names if (EXAMPLES / f"{n}.py").exists()}


def scripts() -> list[Path]:
    files = sorted(EXAMPLES.glob("*.py"))
    helpers = set().union(*(_local_imports(f.read_text(encoding="utf-8")) for f in files))
    return [f for f in files if f.stem not in helpers]


def honours_smoke(script: Path) -> bool:
    """The script reads the variable itself: it is the one that knows its sizes."""
    return SMOKE_VAR in script.read_text(encoding="utf-8")


def test_scripts_are_found_and_helpers_left_out():
    names = {s.name for s in scripts()}
    assert "train_fashion_resnet.py" in names and "trainer_api.py" in names
    assert "fashion_common.py" not in names


@pytest.mark.slow
@pytest.mark.parametrize("script", scripts(), ids=lambda s: s.stem)
def test_example_runs_small(script, tmp_path):
    assert honours_smoke(script), f"{script.name} does not read {SMOKE_VAR}: give it a small-size mode"
    env = dict(os.environ, **{SMOKE_VAR: "1"}, MPLBACKEND="Agg", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{script.name}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
