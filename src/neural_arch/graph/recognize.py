"""Constants a model computes from its inputs' sizes or values outside any op, recognised by form.

Models build some tensors with NumPy -- position ids ``arange(T)``, all-zero token types, causal
masks, the additive mask ``(1 - attention_mask) * min``, the end-of-text position ``ids.argmax(-1)``,
rotary cos/sin tables. The tracer sees only the result, a constant. When that constant changes with
a dynamic size or is a function of an input, it is matched here against these forms, each a
``recipe`` that ``onnx`` rebuilds from the graph's inputs:

    ("fill", value)                         every element equal
    ("arange", axis, start, step)           start + step * i along one axis (start may be a Dim)
    ("input_affine", input, a, b)           a * input + b, reshaped (and cast) to the constant
    ("argmax", input, token)                argmax over the last axis of input (== token, if given)
    ("causal", keep, drop, k)               keep where j <= i + k, drop elsewhere (last two axes)
    ("causal_padding", input, keep, drop, k)  (B, 1, T, S): keep where j <= i + k and input[b, j] != 0
    ("padded_positions", input, pad)        RoBERTa's positions: cumsum(input != pad) * (input != pad) + pad
    ("rotary", axis, start, freqs, fn)      fn(position * freqs), fn cos or sin, positions start + i
    ("unknown", why)                        none of these: export raises ExportError
"""

from __future__ import annotations

import numpy as np

from neural_arch.graph.dims import fit


def recognize(value, datas, points, syms, run_inputs, shape) -> tuple:
    """The recipe of a constant whose arrays at the traced sizes are ``datas`` (one per run)."""
    for form in (_fill, _arange, _input_affine, _argmax, _causal, _causal_padding, _padded_positions, _rotary):
        recipe = form(datas, points, syms, run_inputs)
        if recipe is not None:
            return recipe
    return ("unknown", (f"constant {value.name} (first used in {value.module or 'the top level'}, shape "
                       f"{datas[0].shape}) changes with the dynamic sizes in a way the exporter does not know"))


def recognize_static(datas, run_inputs) -> tuple | None:
    """For a constant that changes with the input values (``datas``, one per run): a function of an input?"""
    return (_input_affine(datas, None, None, run_inputs) or _argmax(datas, None, None, run_inputs)
            or _causal_padding(datas, None, None, run_inputs) or _padded_positions(datas, None, None, run_inputs))


def _fill(datas, points, syms, run_inputs):
    first = datas[0].reshape(-1)[:1]
    if first.size and all(d.size and (d == first[0]).all() for d in datas):
        return ("fill", first[0].item())
    return None


def _arange(datas, points, syms, run_inputs):
    d0 = datas[0]
    for axis in range(d0.ndim):
        starts, steps = [], []
        for d in datas:
            rows = np.moveaxis(d, axis, -1).reshape(-1, d.shape[axis])
            if rows.shape[1] < 1 or not (rows == rows[:1]).all():
                break
            row = rows[0]
            with np.errstate(over="ignore", invalid="ignore"):  # a step that overflows is no arange
                step = row[1] - row[0] if row.size > 1 else np.ones((), row.dtype)  # one position: step 1
                if not np.array_equal(row, row[0] + step * np.arange(row.size, dtype=row.dtype)):
                    break
            starts.append(row[0].item())
            steps.append(step.item())
        else:
            if len(set(steps)) == 1 and all(float(s).is_integer() for s in starts):
                start = fit([int(s) for s in starts], points, syms) if points else int(starts[0])
                if start is not None:
                    return ("arange", axis, start, steps[0])
    return None


def _input_affine(datas, points, syms, run_inputs):
    """data == a * X.reshape(data.shape) + b for one input X, a != 0, in every run."""
    for idx in range(len(run_inputs[0])):
        name = run_inputs[0][idx][0]
        found, flat = None, []
        for d, inputs in zip(datas, run_inputs):
            x = inputs[idx][2]
            if x.size != d.size or x.size == 0 or d.dtype.kind not in "fiub" or x.dtype.kind not in "fiub":
                break
            xs, ys = x.reshape(-1).astype(np.float64), d.reshape(-1).astype(np.float64)
            lo, hi = xs.min(), xs.max()
            if lo == hi:
                flat.append((xs, ys))  # a constant input (an all-ones mask) cannot tell a from b: checked below
                continue
            i, j = int(np.argmin(xs)), int(np.argmax(xs))
            a = (ys[j] - ys[i]) / (hi - lo)
            b = ys[i] - a * lo
            if a == 0 or not np.allclose(a * xs + b, ys, rtol=1e-6, atol=0) or (found and not np.isclose(found[0], a)):
                break
            found = (a, b)
        else:
            if found is not None and all(np.allclose(found[0] * xs + found[1], ys, rtol=1e-6, atol=0)
                                         for xs, ys in flat):
                return ("input_affine", name, found[0], found[1])
    return None


def _argmax(datas, points, syms, run_inputs):
    if datas[0].dtype.kind not in "iu":
        return None
    for idx in range(len(run_inputs[0])):
        name = run_inputs[0][idx][0]
        token = None
        for d, inputs in zip(datas, run_inputs):
            x = inputs[idx][2]
            if x.dtype.kind not in "iu" or x.ndim < 1 or x.shape[:-1] != d.shape:
                break
            if np.array_equal(x.argmax(-1), d) and token is None:
                continue
            picked = np.take_along_axis(x, d[..., None].astype(np.int64), -1)
            t = picked.reshape(-1)[0]
            if (not (picked == t).all() or not np.array_equal((x == t).argmax(-1), d)
                    or (token is not None and t != token)):
                break
            token = t
        else:
            return ("argmax", name, None if token is None else int(token))
    return None


def _causal(datas, points, syms, run_inputs):
    ks, keep, drop = [], None, None
    for d in datas:
        if d.ndim < 2 or any(s != 1 for s in d.shape[:-2]):
            return None
        m = d.reshape(d.shape[-2:])
        vals = np.unique(m)
        if vals.size != 2:
            return None
        lo_left = m[-1, 0]  # the bottom-left element is always kept
        other = vals[0] if vals[1] == lo_left else vals[1]
        i, j = np.indices(m.shape)
        k = None
        for cand in range(-m.shape[0], m.shape[1] + 1):
            if np.array_equal(np.where(j <= i + cand, lo_left, other), m):
                k = cand
                break
        if k is None or (keep is not None and (keep != lo_left or drop != other)):
            return None
        keep, drop = lo_left, other
        ks.append(k)
    k = fit(ks, points, syms) if points else ks[0]
    return None if k is None else ("causal", keep.item(), drop.item(), k)


def _causal_padding(datas, points, syms, run_inputs):
    """(B, 1, T, S) masks of a causal LM with padding: causal (offset k) and the key not padding in a (B, S) input."""
    d0 = datas[0]
    if d0.ndim != 4 or d0.shape[1] != 1:
        return None
    for idx in range(len(run_inputs[0])):
        name = run_inputs[0][idx][0]
        ks, vals = [], None
        for d, inputs in zip(datas, run_inputs):
            x = inputs[idx][2]
            if x.ndim != 2 or x.shape != (d.shape[0], d.shape[3]):
                break
            u = np.unique(d)
            if u.size > 2 or (vals is not None and not set(u.tolist()) <= set(vals)):
                break
            i, j = np.indices(d.shape[-2:])
            pad_ok = (x != 0)[:, None, None, :]
            k = None
            for cand in range(-d.shape[2], d.shape[3] + 1):
                allowed = (j <= i + cand)[None, None] & pad_ok
                if allowed.any() and not allowed.all():
                    kv, dv = d[allowed], d[~allowed]
                    if (kv == kv[0]).all() and (dv == dv[0]).all() and kv[0] != dv[0]:
                        k, vals = cand, (kv[0].item(), dv[0].item())
                        break
            if k is None:
                break
            ks.append(k)
        else:
            if ks and vals is not None:
                k = fit(ks, points, syms) if points else (ks[0] if len(set(ks)) == 1 else None)
                if k is not None:
                    return ("causal_padding", name, vals[0], vals[1], k)
    return None


def _padded_positions(datas, points, syms, run_inputs):
    """Positions that skip padding (RoBERTa): cumsum(x != pad) * (x != pad) + pad along the last axis."""
    if datas[0].dtype.kind not in "iu":
        return None
    for idx in range(len(run_inputs[0])):
        name = run_inputs[0][idx][0]
        pads = None
        for d, inputs in zip(datas, run_inputs):
            x = inputs[idx][2]
            if x.dtype.kind not in "iu" or x.shape != d.shape or d.size == 0:
                break
            ok = set()
            for pad in (int(d.min()), int(d.min()) - 1):
                real = (x != pad).astype(np.int64)
                if np.array_equal(np.cumsum(real, axis=-1) * real + pad, d):
                    ok.add(pad)
            pads = ok if pads is None else pads & ok
            if not pads:
                break
        else:
            if pads:
                return ("padded_positions", name, min(pads))
    return None


def _rotary(datas, points, syms, run_inputs):
    """cos / sin of (start + i) * f_j along one axis, one frequency per last-axis column."""
    d0 = datas[0]
    if d0.dtype.kind != "f" or d0.ndim < 2:
        return None
    axis = d0.ndim - 2
    lines = [np.moveaxis(d, axis, 0).reshape(d.shape[axis], -1) for d in datas]
    if any(len(line) < 2 for line in lines):
        return None
    for fn, inv in (("cos", np.cos), ("sin", np.sin)):
        freqs = _frequencies(lines[0].astype(np.float64), fn)
        if freqs is None:
            continue
        starts = []
        for line in lines:
            start = _offset(line.astype(np.float64), freqs, inv)
            if start is None:
                break
            starts.append(start)
        else:
            start = fit(starts, points, syms) if points else starts[0]
            if start is not None:
                return ("rotary", axis, start, freqs.astype(np.float32).reshape(d0.shape[axis + 1:]), fn)
    return None


def _frequencies(line, fn):
    """Per column, the f (mod 2 pi, any sign for cos) with line[t] = fn(t f), rows t = 0.. (start 0)."""
    t = np.arange(len(line))[:, None]
    if fn == "cos":
        if not np.allclose(line[0], 1.0, atol=1e-6):
            return None
        f = np.arccos(np.clip(line[1], -1, 1))
    else:
        if not np.allclose(line[0], 0.0, atol=1e-6):
            return None
        c = line[2] / (2 * np.where(line[1] == 0, 1, line[1])) if len(line) > 2 else np.sqrt(1 - line[1] ** 2)
        f = np.arctan2(line[1], np.clip(c, -1, 1))
    # refine with the later rows (the angle t f grows, so its error shrinks relative to t)
    for row in range(2, len(line)):
        guess = row * f
        theta = np.arccos(np.clip(line[row], -1, 1)) if fn == "cos" else np.arcsin(np.clip(line[row], -1, 1))
        cands = [theta, -theta] if fn == "cos" else [theta, np.pi - theta]
        best = None
        for c in cands:
            turns = np.round((guess - c) / (2 * np.pi))
            angle = c + 2 * np.pi * turns
            best = angle if best is None else np.where(np.abs(angle - guess) < np.abs(best - guess), angle, best)
        ok = np.abs(best - guess) < 0.1
        f = np.where(ok & (np.abs(np.cos(best)) < 0.99) if fn == "cos" else ok, best / row, f)
    fun = np.cos if fn == "cos" else np.sin
    return f if np.allclose(fun(t * f), line, atol=2e-6) else None


def _offset(line, freqs, fun):
    """The start position s with line[t] = fun((s + t) f), searched over small integers."""
    t = np.arange(len(line))[:, None]
    for s in range(4096):
        if np.allclose(fun((s + t) * freqs), line, atol=1e-5):
            return s
    return None
