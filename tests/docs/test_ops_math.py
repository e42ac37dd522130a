"""docs/ops_math.py: the ops' plain-text formulas become AsciiMath; their prose stays text."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs"))
import ops_math  # noqa: E402


def test_formula_lines_and_prose_lines_are_told_apart():
    assert ops_math.is_formula("y = max(x, 0)        dy/dx = [x > 0]   (0 at x = 0, as in torch)")
    assert ops_math.is_formula("z = x * y        dz/dx = y,  dz/dy = x")
    assert not ops_math.is_formula("The two masks are torch's: they keep 0^0 and 0^y (y >= 0) free of 0 * inf = nan.")
    assert not ops_math.is_formula("Backward (cols = im2col(xpad) as (G, C/G*kh*kw, N*Ho*Wo)):")


def test_derivatives_become_fractions_and_words_become_text():
    math = ops_math.to_asciimath("y = x sigmoid(a x)          dy/dx = s + a x s (1 - s)")
    assert "(d y)/(d x)" in math and '"sigmoid"(a x)' in math and " qquad " in math
    assert ops_math.to_asciimath("y = e^{k x}") == "y = e^(k x)"   # braces group as AsciiMath's parentheses
    remark = ops_math.to_asciimath("y = min(max(x, lo), hi)      dy/dx = [lo < x < hi]   (0 on the boundary, as torch)")
    assert remark.endswith('"(0 on the boundary, as torch)"')   # a remark in its own column is text


def test_render_escapes_html_and_keeps_prose_as_markdown():
    out = ops_math.render("y = max(x, 0)        dy/dx = [x > 0]\n\nSaved: ``y`` only, a*b stays literal.")
    assert '<div class="arithmatex">`y = max(x, 0) qquad (d y)/(d x) = [x &gt; 0]`</div>' in out
    assert "`y` only, a\\*b stays literal." in out
