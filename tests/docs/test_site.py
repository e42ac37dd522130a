"""The documentation site: `mkdocs build --strict` passes, every public name has a docstring and a place
in the API reference, and a real headless Chromium sees rendered math and working navigation."""

from __future__ import annotations

import functools
import http.server
import inspect
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docs"))
import api_names  # noqa: E402 - docs/api_names.py: the walk the reference pages are generated from

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
               NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    problems = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert done.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems or [done.stderr[-5000:]])
    return out


def _all_names():
    names = {ns: api_names.public_names(ns) for ns in api_names.namespaces()}
    return names, api_names.primary_locations(names)


def test_every_public_name_has_a_docstring():
    names, primary = _all_names()
    missing = sorted({api_names.documented_at(e, primary).path for entries in names.values() for e in entries
                      if (inspect.isclass(e.obj) or inspect.isroutine(e.obj)) and not (e.obj.__doc__ or "").strip()})
    assert not missing, "public names without a docstring (add one; the site renders it):\n  " + "\n  ".join(missing)


def test_the_walk_finds_the_packages_and_their_names():
    spaces = api_names.namespaces()
    for ns in ["neural_arch", "neural_arch.nn", "neural_arch.nn.functional", "neural_arch.optim",
               "neural_arch.optim.lr_scheduler", "neural_arch.data", "neural_arch.io", "neural_arch.models",
               "neural_arch.train", "neural_arch.distributed", "neural_arch.onnx", "neural_arch.graph",
               "neural_arch.serve", "neural_arch.ops.activation", "neural_arch.errors"]:
        assert ns in spaces, ns
    names, primary = _all_names()
    linear = next(e for e in names["neural_arch.nn"] if e.name == "Linear")
    assert api_names.documented_at(linear, primary).path == "neural_arch.nn.Linear"   # not nn.modules.linear
    relu = next(e for e in names["neural_arch.nn.functional"] if e.name == "relu")
    assert api_names.documented_at(relu, primary).path == "neural_arch.ops.activation.relu"  # with its math
    assert any(f.__name__ == "ReLU" for f in api_names.op_functions("neural_arch.ops.activation"))


def test_every_public_name_is_in_the_reference(site):
    names, primary = _all_names()
    ids: dict[str, set[str]] = {}
    missing = []
    for entries in names.values():
        for entry in entries:
            at = api_names.documented_at(entry, primary)
            page = site / "reference" / at.namespace / "index.html"
            if at.namespace not in ids:
                ids[at.namespace] = set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
            home = api_names.home(entry.obj)
            if at.path not in ids[at.namespace] and home not in ids[at.namespace]:
                missing.append(f"{entry.path} (expected on reference/{at.namespace}.md)")
    assert not missing, "public names the reference does not show:\n  " + "\n  ".join(missing)


def test_op_pages_carry_each_functions_math(site):
    html = (site / "reference" / "neural_arch.ops.activation" / "index.html").read_text(encoding="utf-8")
    assert 'id="neural_arch.ops.activation.GELU"' in html
    gelu = html.split('id="neural_arch.ops.activation.GELU"')[1].split("<h3")[0]
    assert 'class="arithmatex"' in gelu and "Phi(x)" in gelu   # the docstring's formula, as AsciiMath


# -- a real browser -------------------------------------------------------------------------------------
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("no Chromium found: `make test` installs it (apt-get install chromium)")


@pytest.fixture(scope="module")
def served(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _typeset(page) -> None:
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")


def _not_blank(png: Path) -> bool:
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return pixels.std() > 10


def test_browser_sees_rendered_math_and_working_navigation(served, tmp_path):
    from playwright.sync_api import sync_playwright  # the dev extra installs it; Chromium comes from apt

    shots = Path(os.environ.get("NEURAL_ARCH_DOCS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))

        page.goto(served)
        _typeset(page)
        page.screenshot(path=str(shots / "home.png"))
        title = page.locator("h1").first.inner_text()

        page.goto(served + "reference/neural_arch.ops.activation/#neural_arch.ops.activation.GELU")
        _typeset(page)
        page.screenshot(path=str(shots / "op_page.png"))
        formulas = page.locator(".na-formula mjx-container")
        assert formulas.count() >= 10, "the op page's formulas were not typeset"
        assert page.locator("mjx-merror").count() == 0, "MathJax reported a formula it could not read"
        assert formulas.first.bounding_box()["height"] > 10

        page.goto(served + "tutorials/autograd/")
        _typeset(page)
        page.screenshot(path=str(shots / "tutorial.png"))
        assert page.locator("mjx-container").count() >= 3, "the tutorial's TeX was not typeset"

        # navigation: click a link in the site's nav, and the page changes
        page.goto(served)
        page.locator("nav.md-nav--primary a", has_text="From PyTorch to neural-arch").first.click()
        page.wait_for_url("**/tutorials/from_pytorch/")
        assert page.locator("h1").first.inner_text() != title
        assert "From PyTorch" in page.locator("h1").first.inner_text()
        browser.close()
    assert not errors, "the browser reported:\n" + "\n".join(errors)
    for name in ("home.png", "op_page.png", "tutorial.png"):
        assert _not_blank(shots / name), f"{name} is blank"
