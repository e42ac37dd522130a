"""Render the math in an op's docstring (plain text, as the source shows it) as MathJax AsciiMath.

The ``Function`` docstrings in ``neural_arch/ops`` state the forward and backward math in a plain
notation that reads well in a terminal (``y = max(x, 0)        dy/dx = [x > 0]``). This module
turns each formula line into a display formula for the docs site and leaves prose lines as text,
so the docstrings stay plain text and there is one place for the math: the source.

A line is a formula when it has an ``=`` (or ``->``) and few prose words. In a formula, words of
two letters or more that AsciiMath does not know (``relu6``, ``xhat``, ``where``) are set upright as
text, ``dy/dx`` becomes a fraction of whole symbols, and braces group like parentheses.
"""

from __future__ import annotations

import html
import re

# words AsciiMath typesets itself (functions, Greek letters, operators)
ASCIIMATH_WORDS = {
    "sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "ln", "max", "min", "sum", "prod",
    "sqrt", "det", "dim", "lim", "mod", "alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta",
    "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Phi", "Pi", "Psi", "Omega", "Sigma", "abs",
}
# words that make a column prose, not a formula, however many '=' it has
PROSE_HINT = re.compile(r"``|\b(?:the|is|are|with|when|which|from|that|this|for|not|one|each|every)\b")
# words set as text with a space either side
CONNECTIVES = {"if", "else", "where", "for", "and", "or", "with", "at", "as", "of", "on", "otherwise", "over"}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# dy/dx, dL/dx_i, dL/dW[i], d values / dx: a derivative as a fraction of whole symbols
DERIVATIVE = re.compile(r"\bd\s?([A-Za-z]\w*(?:\[[^\]]*\])?)\s*/\s*d([A-Za-z]\w*(?:\[[^\]]*\])?)")


def _columns(line: str) -> list[str]:
    return [s.strip() for s in re.split(r"\s{3,}", line.strip()) if s.strip()]


def _is_formula_column(column: str) -> bool:
    if ("=" not in column and "->" not in column) or PROSE_HINT.search(column):
        return False
    words = WORD.findall(column)
    prose = [w for w in words if len(w) >= 4 and w.lower() not in ASCIIMATH_WORDS]
    return len(prose) <= max(2, len(words) // 3)


def is_formula(line: str) -> bool:
    """A line with a column (the source's runs of 3+ spaces) that has an ``=`` and little prose."""
    return not line.rstrip().endswith(":") and any(_is_formula_column(c) for c in _columns(line))


def _quote_words(segment: str) -> str:
    out, last, prev_quoted = [], 0, False
    for m in WORD.finditer(segment):
        word = m.group(0)
        out.append(segment[last:m.start()])
        after = segment[m.end():m.end() + 1]
        if after in ("_", "^") and len(word) > 1 and word not in ASCIIMATH_WORDS:
            out.append(f'"{word}"')  # a named operand with an index: x_i stays math, xhat_i text
            prev_quoted = True
        elif len(word) == 1 or word in ASCIIMATH_WORDS or (word == "in" and not prev_quoted):
            out.append(word)
            prev_quoted = False
        else:
            pad = " " if prev_quoted or word in CONNECTIVES else ""  # words in a row keep their spaces
            out.append(f'"{pad}{word} "' if word in CONNECTIVES else f'"{pad}{word}"')
            prev_quoted = True
        last = m.end()
    out.append(segment[last:])
    return "".join(out)


def to_asciimath(line: str) -> str:
    """One formula line as AsciiMath; runs of 3+ spaces (the source's columns) become wide gaps."""
    converted = []
    for seg in _columns(line):
        if not _is_formula_column(seg):  # a remark beside the formula: text
            converted.append('"' + seg.replace('"', "''") + '"')
            continue
        seg = DERIVATIVE.sub(lambda m: f"(d {m.group(1)})/(d {m.group(2)})", seg)
        seg = seg.replace("{", "(").replace("}", ")")
        converted.append(_quote_words(seg))
    return " qquad ".join(converted)


def _escape_markdown(text: str) -> str:
    parts = text.split("``")
    for i in range(0, len(parts), 2):  # outside ``code``
        parts[i] = re.sub(r"([\\*_\[\]<>#|])", r"\\\1", parts[i])
    return "``".join(parts).replace("``", "`")


def render(doc: str) -> str:
    """Markdown for a Function's docstring: formulas as display math, the rest as text."""
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if is_formula(lines[i]):
            block = []
            while i < len(lines) and is_formula(lines[i]):
                block.append(lines[i])
                i += 1
            # every row carries the class: MathJax only looks inside elements of class arithmatex
            rows = "\n".join(f'<div class="arithmatex">`{html.escape(to_asciimath(r), quote=False)}`</div>'
                              for r in block)
            out.append(f'<div class="na-formula" markdown="0">\n{rows}\n</div>\n')
        else:
            out.append(_escape_markdown(lines[i].strip()) if lines[i].strip() else "")
            i += 1
    return "\n".join(out).strip() + "\n"
