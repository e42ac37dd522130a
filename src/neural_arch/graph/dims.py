"""Symbolic sizes: ``Dim``, a multilinear polynomial in named sizes with integer coefficients.

A dynamic axis (``dynamic_axes={"ids": {0: "batch", 1: "seq"}}``) makes every size that depends on
it symbolic: ``batch``, ``seq``, ``batch*seq``, ``seq+1``, ``3*seq``. The tracer learns each such
size by running the model at a few sizes (see ``tracer.fit``): an integer that changes between the
runs is solved for as ``c0 + c1 batch + c2 seq + c3 batch*seq`` (one coefficient per subset of the
symbols), which is exact for the reshapes, slices and concatenations models do with their sizes.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


class Dim:
    """sum over terms of ``coef * prod(symbols)``; ``terms`` maps a frozenset of names to an int."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict):
        self.terms = {k: int(v) for k, v in terms.items() if v}

    @classmethod
    def symbol(cls, name: str) -> Dim:
        return cls({frozenset([name]): 1})

    @property
    def symbols(self) -> set:
        return set().union(*self.terms) if self.terms else set()

    def evaluate(self, sizes: dict) -> int:
        """The integer this size takes for given values of its symbols."""
        return sum(c * int(np.prod([sizes[s] for s in k])) for k, c in self.terms.items())

    def is_symbol(self) -> str | None:
        """The name, if this is exactly one symbol."""
        if len(self.terms) == 1:
            (k, c), = self.terms.items()
            if c == 1 and len(k) == 1:
                return next(iter(k))
        return None

    def __eq__(self, other) -> bool:
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def __repr__(self) -> str:
        parts = []
        for k, c in sorted(self.terms.items(), key=lambda kc: (len(kc[0]), sorted(kc[0]))):
            name = "*".join(sorted(k))
            if not name:
                parts.append(str(c))
            else:
                parts.append(name if c == 1 else f"{c}*{name}")
        return "+".join(parts).replace("+-", "-") or "0"


def fit(values: list, points: list, names: list):
    """The int or ``Dim`` that takes ``values[i]`` at the symbol sizes ``points[i]`` (dicts).

    Returns None when no multilinear polynomial with integer coefficients fits (e.g. ``seq // 2``).
    """
    if all(v == values[0] for v in values):
        return values[0]
    names = sorted(names)  # the terms: every subset of the names, smallest first
    terms = [frozenset(c) for r in range(len(names) + 1) for c in combinations(names, r)]
    a = np.array([[np.prod([p[s] for s in t]) for t in terms] for p in points], dtype=np.float64)
    coef, *_ = np.linalg.lstsq(a, np.array(values, dtype=np.float64), rcond=None)
    rounded = np.rint(coef).astype(np.int64)
    if not np.allclose(coef, rounded, atol=1e-6) or not np.array_equal(a @ rounded, np.array(values)):
        return None
    d = Dim(dict(zip(terms, rounded.tolist())))
    return d.terms.get(frozenset(), 0) if not d.symbols else d


def dim_str(d) -> str:
    return str(d) if isinstance(d, Dim) else str(int(d))


def shape_text(shape) -> str:
    return "(" + ", ".join(dim_str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
