"""Optimizer updates, in place: Adam / AdamW, SGD, RMSprop, Adagrad, Lion.

Each function updates the parameter array ``p`` and its state arrays in place from the gradient
``g``, with torch's formulas in torch's order of operations. The NumPy twins are the readable
spelling; the kernels do the same arithmetic in one pass over memory, bit for bit (scalars are
computed in float64 first, as torch does with Python floats). The kernels take the arrays
flattened in memory order, so they run when ``p`` and its states share one contiguous layout
(row- or column-major); anything else takes the twin.
"""

from __future__ import annotations

import functools

import numpy as np

from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import EXACT, F, inline, kernel

_F32 = np.float32


def lerp_(a, b, weight: float):
    """``a <- a + weight * (b - a)`` in place, computed the way torch's ``lerp_`` is
    (from the nearer end), so float32 trajectories match torch's to the last bit more often."""
    if weight < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1.0 - weight)
    return a


def _decayed(p, g, maximize, weight_decay):
    """The gradient a step uses: negated for ``maximize``, plus ``weight_decay p`` (L2)."""
    if maximize:
        g = -g
    return g + weight_decay * p if weight_decay != 0 else g


def _flat_views(p, g, *states):
    """(p, g, *states) as 1-d views in p's memory order (g converted to float32 in that layout), or None
    when p is not contiguous or a state array has another layout."""
    if p.flags.c_contiguous:
        if not all(s.flags.c_contiguous for s in states):
            return None
        g = np.ascontiguousarray(g, dtype=_F32)
    elif p.flags.f_contiguous:
        if not all(s.flags.f_contiguous for s in states):
            return None
        g = np.asfortranarray(g, dtype=_F32)
    else:
        return None
    return [a.ravel("K") for a in (p, g) + states]


_NONE = np.empty(0, _F32)  # a kernel's placeholder for a state array the options leave out


# -- Adam / AdamW ------------------------------------------------------------------------------------------
def _adam_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    """p <- p (1 - lr wd) (AdamW) or g <- g + wd p (Adam);  m <- lerp(m, g, 1 - b1);  v <- b2 v + (1 - b2) g^2;
    p <- p - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (v: max of all v so far with ``vmax``)"""
    if decoupled:
        g = -g if maximize else g
        if weight_decay != 0:
            p *= 1 - lr * weight_decay
    else:
        g = _decayed(p, g, maximize, weight_decay)
    lerp_(m, g, 1 - beta1)
    v *= beta2
    v += (1 - beta2) * (g * g)
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        denom = np.sqrt(vmax) / bias_correction2_sqrt
    else:
        denom = np.sqrt(v) / bias_correction2_sqrt
    denom += eps
    p -= step_size * (m / denom)


@kernel(EXACT, rows=(0, 1, 2, 3, 13))
def adam_kernel(p, g, m, v, step_size, one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay, bias_c2_sqrt,
              amsgrad, vmax):
    """Adam / AdamW in one pass, torch's formulas in torch's order of operations
    (scalars are precomputed in float64 by the caller, as torch does with Python floats):
        p <- p decay                  (AdamW: decay = 1 - lr wd;  Adam: decay = 1)
        g <- g + l2 p                 (Adam's L2 penalty;  AdamW: l2 = 0)
        m <- m + (g - m)(1 - b1);     v <- v b2 + (1 - b2) g^2
        p <- p - step_size m / (sqrt(v) / sqrt(bc2) + eps)     (sqrt(max v) with amsgrad)"""
    for i in range(p.size):
        pi = p[i] * decay
        gi = g[i] + l2 * pi
        mi = m[i] + (gi - m[i]) * one_minus_beta1
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = pi - step_size * (mi / (np.sqrt(vi) / bias_c2_sqrt + eps))


@functools.lru_cache(maxsize=64)
def _adam_scalars(step, lr, beta1, beta2, eps, weight_decay, decoupled):
    return (_F32(lr / (1 - beta1**step)), _F32(1 - beta1), _F32(beta2), _F32(1 - beta2), _F32(eps),
            _F32(0.0 if decoupled else weight_decay), _F32(1 - lr * weight_decay if decoupled else 1.0),
            _F32((1 - beta2**step) ** 0.5))


@dispatch(_adam_step)
def adam_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    flat = _flat_views(p, g, m, v, *(() if vmax is None else (vmax,)))
    if flat is None:
        return _adam_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize)
    if maximize:
        flat[1] = -flat[1]  # (a new array: g may be the caller's .grad)
    scalars = _adam_scalars(step, lr, beta1, beta2, eps, weight_decay, decoupled)
    adam_kernel(*flat[:4], *scalars, vmax is not None, flat[4] if vmax is not None else _NONE)
    return None


@inline(EXACT)
def _decayed_grad(g, p, weight_decay, g_sign):
    """g_sign g + wd p: the gradient an SGD/RMSprop/Adagrad step uses (g_sign = -1 to maximize, exact)"""
    g = g_sign * g
    return g + weight_decay * p if weight_decay != F(0.0) else g


# The kernels below take an empty placeholder for a state array their options leave out, and never
# touch it in a loop: LLVM's vectorised loop checks at run time that every array it may access does
# not overlap the others, over the loop's whole length, and an empty array placed near the parameter
# failed that check at random (RMSprop's step then ran nine times slower, from call to call). Hence
# one loop per case instead of tests inside one loop.

# -- SGD ------------------------------------------------------------------------------------------------
def _sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """g <- g + wd p (negated first for ``maximize``);  with momentum: b <- g on the first step (``buf``
    None), else b momentum + (1 - dampening) g, and g <- g + momentum b (Nesterov) or b;  p <- p - lr g.
    Returns the momentum buffer (None without momentum)."""
    g = _decayed(p, g, maximize, weight_decay)
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
    return buf


@kernel(EXACT, rows=(0, 1, 2))
def sgd_kernel(p, g, buf, lr, weight_decay, momentum, one_minus_dampening, nesterov, use_momentum, first, g_sign):
    """SGD in one pass, torch's formulas in torch's order:
        g <- g_sign g + wd p
        b <- g on the first step, else b momentum + (1 - dampening) g     (when momentum is used)
        d <- g + momentum b (Nesterov), else b;   p <- p - lr d
    ``buf`` is an empty placeholder without momentum."""
    if not use_momentum:
        for i in range(p.size):
            p[i] = p[i] - lr * _decayed_grad(g[i], p[i], weight_decay, g_sign)
        return
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        b = gi if first else buf[i] * momentum + one_minus_dampening * gi
        buf[i] = b
        p[i] = p[i] - lr * (gi + momentum * b if nesterov else b)


@dispatch(_sgd_step)
def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    first = momentum != 0 and buf is None
    state = () if momentum == 0 else (np.empty_like(p) if first else buf,)
    flat = _flat_views(p, g, *state)
    if flat is None:
        return _sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)
    sgd_kernel(flat[0], flat[1], flat[2] if state else _NONE, F(lr), F(weight_decay), F(momentum),
               F(1 - dampening), bool(nesterov), momentum != 0, first, F(-1.0 if maximize else 1.0))
    return state[0] if state else None


# -- Lion -------------------------------------------------------------------------------------------------
def _lion_step(p, g, m, lr, beta1, beta2, weight_decay, maximize):
    """p <- p (1 - lr wd);  p <- p - lr sign(b1 m + (1 - b1) g);  m <- b2 m + (1 - b2) g   (g negated to maximize)"""
    if maximize:
        g = -g
    if weight_decay != 0:
        p *= 1 - lr * weight_decay
    p -= lr * np.sign(beta1 * m + (1 - beta1) * g)
    m *= beta2
    m += (1 - beta2) * g


@kernel(EXACT, rows=(0, 1, 2))
def lion_kernel(p, g, m, lr, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, g_sign):
    """(g_sign = -1 to maximize):
        p <- p decay   (decay = 1 - lr wd);    p <- p - lr sign(b1 m + (1 - b1) g);    m <- b2 m + (1 - b2) g"""
    for i in range(p.size):
        gi = g_sign * g[i]
        mi = m[i]
        c = beta1 * mi + one_minus_beta1 * gi
        s = F(1.0) if c > F(0.0) else (F(-1.0) if c < F(0.0) else c)  # np.sign: 0 stays 0, NaN stays NaN
        p[i] = p[i] * decay - lr * s
        m[i] = mi * beta2 + one_minus_beta2 * gi


@dispatch(_lion_step)
def lion_step(p, g, m, lr, beta1, beta2, weight_decay, maximize):
    flat = _flat_views(p, g, m)
    if flat is None:
        return _lion_step(p, g, m, lr, beta1, beta2, weight_decay, maximize)
    lion_kernel(*flat, F(lr), F(1 - lr * weight_decay), F(beta1), F(1 - beta1), F(beta2), F(1 - beta2),
                F(-1.0 if maximize else 1.0))
    return None


# -- RMSprop ----------------------------------------------------------------------------------------------
def _rmsprop_step(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, maximize):
    """g <- g + wd p;  v <- alpha v + (1 - alpha) g^2;  centered (``grad_avg``): ga <- lerp(ga, g, 1 - alpha),
    s = sqrt(v - ga^2) + eps, else s = sqrt(v) + eps;  with momentum (``buf``): b <- momentum b + g / s,
    p <- p - lr b;  else p <- p - lr g / s"""
    g = _decayed(p, g, maximize, weight_decay)
    square_avg *= alpha
    square_avg += (1 - alpha) * (g * g)
    if grad_avg is not None:
        lerp_(grad_avg, g, 1 - alpha)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg += eps
    if buf is not None:
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)


@kernel(EXACT, rows=(0, 1, 2, 3, 4))
def rmsprop_kernel(p, g, square_avg, grad_avg, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum,
                   centered, use_momentum, lerp_from_start, lerp_back, g_sign):
    """In the order of the twin's lines:
        g <- g_sign g + wd p;    v <- alpha v + (1 - alpha) g^2
        ga <- lerp(ga, g, 1 - alpha)    (centered; from the end ``lerp_`` starts at, lerp_back = 1 - (1 - alpha))
        s <- g / (sqrt(v - ga^2) + eps)   (centered)  or  g / (sqrt(v) + eps)
        b <- momentum b + s;  p <- p - lr b      (momentum)  or  p <- p - lr s
    ``grad_avg`` and ``buf`` are empty placeholders when unused (one loop per case: see above)."""
    if centered and use_momentum:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v, a = _rms_averages(square_avg, grad_avg, i, gi, alpha, one_minus_alpha, lerp_from_start, lerp_back)
            b = buf[i] * momentum + gi / (np.sqrt(v - a * a) + eps)
            buf[i] = b
            p[i] = p[i] - lr * b
    elif centered:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v, a = _rms_averages(square_avg, grad_avg, i, gi, alpha, one_minus_alpha, lerp_from_start, lerp_back)
            p[i] = p[i] - lr * (gi / (np.sqrt(v - a * a) + eps))
    elif use_momentum:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v = square_avg[i] * alpha + one_minus_alpha * (gi * gi)
            square_avg[i] = v
            b = buf[i] * momentum + gi / (np.sqrt(v) + eps)
            buf[i] = b
            p[i] = p[i] - lr * b
    else:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v = square_avg[i] * alpha + one_minus_alpha * (gi * gi)
            square_avg[i] = v
            p[i] = p[i] - lr * (gi / (np.sqrt(v) + eps))


@inline(EXACT)
def _rms_averages(square_avg, grad_avg, i, g, alpha, one_minus_alpha, lerp_from_start, lerp_back):
    """Centered RMSprop's running averages of g^2 and g at i, updated in place; returns both."""
    v = square_avg[i] * alpha + one_minus_alpha * (g * g)
    square_avg[i] = v
    a = grad_avg[i]
    a = a + one_minus_alpha * (g - a) if lerp_from_start else g - (g - a) * lerp_back
    grad_avg[i] = a
    return v, a


@dispatch(_rmsprop_step)
def rmsprop_step(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, maximize):
    flat = _flat_views(p, g, square_avg, *(a for a in (grad_avg, buf) if a is not None))
    if flat is None:
        return _rmsprop_step(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, maximize)
    rest = iter(flat[3:])
    ga = next(rest) if grad_avg is not None else _NONE
    b = next(rest) if buf is not None else _NONE
    rmsprop_kernel(flat[0], flat[1], flat[2], ga, b, F(lr), F(alpha), F(1 - alpha), F(eps), F(weight_decay),
                   F(momentum), grad_avg is not None, buf is not None, 1 - alpha < 0.5, F(1.0 - (1 - alpha)),
                   F(-1.0 if maximize else 1.0))  # (1 - alpha < 0.5: lerp_'s choice of end)
    return None


# -- Adagrad ----------------------------------------------------------------------------------------------
def _adagrad_step(p, g, total, lr, eps, weight_decay, maximize):
    """g <- g + wd p;  s <- s + g^2;  p <- p - lr g / (sqrt(s) + eps)   (lr already decayed for this step)"""
    g = _decayed(p, g, maximize, weight_decay)
    total += g * g
    std = np.sqrt(total)
    std += eps
    p -= lr * (g / std)


@kernel(EXACT, rows=(0, 1, 2))
def adagrad_kernel(p, g, total, lr, eps, weight_decay, g_sign):
    """(g_sign = -1 to maximize; lr already decayed for this step):   g <- g_sign g + wd p;   s <- s + g^2;   p <- p - lr (g / (sqrt(s) + eps))"""
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        si = total[i] + gi * gi
        total[i] = si
        p[i] = p[i] - lr * (gi / (np.sqrt(si) + eps))


@dispatch(_adagrad_step)
def adagrad_step(p, g, total, lr, eps, weight_decay, maximize):
    flat = _flat_views(p, g, total)
    if flat is None:
        return _adagrad_step(p, g, total, lr, eps, weight_decay, maximize)
    adagrad_kernel(*flat, F(lr), F(eps), F(weight_decay), F(-1.0 if maximize else 1.0))
    return None
