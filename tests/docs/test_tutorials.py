"""Every tutorial page runs: its code blocks, in order, in a fresh process, at a small size.

How a page's fenced blocks are read (docs/tutorials/index.md says the same to writers):

- ```python      executed, in order, as one script (one namespace, like a notebook);
- ```bash        each line run as a shell command at that point (``neural-arch ...``), failing on error;
- any block with ``title="NAME"`` (```python title="my_code.py"```, ```yaml title="run.yaml"```) is
  written to the file NAME in the working directory at that point instead of being run;
- ```py, ```sh, ```text, ```console and the rest are shown, never run.

The script runs in an empty temporary directory with ``NEURAL_ARCH_TUTORIAL_SMOKE=1``, which the pages
read to shrink their data and step counts. A page that breaks fails here, with the block's line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((REPO / "docs" / "tutorials").glob("*.md"))
FENCE = re.compile(r"^```([\w+-]*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)
TITLE = re.compile(r'title="([^"]+)"')


def blocks(text: str):
    """(kind, content, line, title) of each top-level fenced block of a Markdown page."""
    for m in FENCE.finditer(text):
        lang, attrs, body = m.group(1), m.group(2), m.group(3)
        title = TITLE.search(attrs)
        yield lang, body, text.count("\n", 0, m.start()) + 1, title.group(1) if title else None


def script_of(page: Path) -> str:
    """The page's runnable blocks as one Python script; each block marked with its line for tracebacks."""
    out = ["import os, subprocess, sys",
           "def _sh(cmd, line):",
           "    print('$', cmd, flush=True)",
           "    done = subprocess.run(cmd, shell=True)",
           "    if done.returncode:",
           "        sys.exit(f'{cmd!r} (block at line {line}) exited with {done.returncode}')"]
    for lang, body, line, title in blocks(page.read_text(encoding="utf-8")):
        if title:
            out.append(f"open({title!r}, 'w', encoding='utf-8').write({body!r})  # {page.name}:{line}")
        elif lang == "python":
            out.append(f"# --- {page.name}:{line}")
            out.append(body)
        elif lang == "bash":
            out += [f"_sh({cmd.strip()!r}, {line})" for cmd in body.splitlines()
                    if cmd.strip() and not cmd.lstrip().startswith("#")]
    return "\n".join(out) + "\n"


def test_every_page_has_runnable_code():
    assert TUTORIALS, "docs/tutorials/ has no pages"
    for page in TUTORIALS:
        if page.name != "index.md":
            assert any(lang in ("python", "bash") for lang, *_ in blocks(page.read_text())), page.name


def test_blocks_are_read_in_order_with_titles_and_languages(tmp_path):
    page = tmp_path / "p.md"
    page.write_text('# t\n\n```python\nx = 1\n```\n\n```py\nnot run\n```\n\n```yaml title="a.yaml"\nk: 1\n```\n\n'
                    '```bash\n# a comment\necho hi\n```\n')
    script = script_of(page)
    assert "x = 1" in script and "not run" not in script
    assert "open('a.yaml', 'w', encoding='utf-8').write('k: 1\\n')" in script
    assert "_sh('echo hi', 15)" in script and "a comment" not in script


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in TUTORIALS if p.name != "index.md"], ids=lambda p: p.stem)
def test_tutorial_runs(page, tmp_path):
    script = tmp_path / f"{page.stem}.py"
    script.write_text(script_of(page), encoding="utf-8")
    bin_dir = str(Path(sys.executable).parent)  # `neural-arch` and `mpiexec` of this environment
    env = dict(os.environ, NEURAL_ARCH_TUTORIAL_SMOKE="1", PYTHONPATH=os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]), PATH=bin_dir + os.pathsep + os.environ["PATH"],
        MPLBACKEND="Agg", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{page.name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
