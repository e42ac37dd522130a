"""Optimizer updates, in place: Adam / AdamW, SGD, RMSprop, Adagrad, Lion, Adamax, Adadelta, NAdam, RAdam.

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


def _adam_family_grad(p, g, lr, weight_decay, decoupled, maximize):
    """The gradient the Adam family uses: negated to maximize; ``p *= 1 - lr wd`` (decoupled) or ``g + wd p``."""
    g = -g if maximize else g
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    return g


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
    g = _adam_family_grad(p, g, lr, weight_decay, decoupled, maximize)
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
        p <- p - step_size m / (sqrt(v) / sqrt(bc2) + eps)     (sqrt(max v) with amsgrad)
    One loop per case: a loop that may touch the placeholder ``vmax`` fails LLVM's overlap check at random
    (see below) and runs scalar."""
    if amsgrad:
        for i in range(p.size):
            pi = p[i] * decay
            gi = g[i] + l2 * pi
            mi = m[i] + (gi - m[i]) * one_minus_beta1
            vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
            m[i] = mi
            v[i] = vi
            vi = max(vmax[i], vi)
            vmax[i] = vi
            p[i] = pi - step_size * (mi / (np.sqrt(vi) / bias_c2_sqrt + eps))
        return
    for i in range(p.size):
        pi = p[i] * decay
        gi = g[i] + l2 * pi
        mi = m[i] + (gi - m[i]) * one_minus_beta1
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
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
    """(g_sign = -1 to maximize; lr already decayed for this step):
    g <- g_sign g + wd p;   s <- s + g^2;   p <- p - lr (g / (sqrt(s) + eps))"""
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


# -- Adamax -----------------------------------------------------------------------------------------------
def _adamax_step(p, g, exp_avg, exp_inf, clr, beta1, beta2, eps, weight_decay, maximize):
    """g <- g + wd p (negated first to maximize);  m <- lerp(m, g, 1 - b1);  u <- max(b2 u, |g| + eps);
    p <- p - clr m / u   (clr = lr / (1 - b1^t))"""
    g = _decayed(p, g, maximize, weight_decay)
    lerp_(exp_avg, g, 1 - beta1)
    exp_inf *= beta2
    np.maximum(exp_inf, np.abs(g) + eps, out=exp_inf)
    p -= clr * (exp_avg / exp_inf)


@kernel(EXACT, rows=(0, 1, 2, 3))
def adamax_kernel(p, g, exp_avg, exp_inf, clr, one_minus_beta1, lerp_from_start, lerp_back, beta2, eps,
                  weight_decay, g_sign):
    """In the twin's order:  g <- g_sign g + wd p;  m <- lerp(m, g, 1 - b1) (from the end ``lerp_`` starts at);
    u <- max(b2 u, |g| + eps) (NaN propagates, as np.maximum);  p <- p - clr (m / u)"""
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        m = exp_avg[i]
        m = m + one_minus_beta1 * (gi - m) if lerp_from_start else gi - (gi - m) * lerp_back
        exp_avg[i] = m
        u = exp_inf[i] * beta2
        a = abs(gi) + eps
        u = u if (u > a or u != u) else a
        exp_inf[i] = u
        p[i] = p[i] - clr * (m / u)


@dispatch(_adamax_step)
def adamax_step(p, g, exp_avg, exp_inf, clr, beta1, beta2, eps, weight_decay, maximize):
    flat = _flat_views(p, g, exp_avg, exp_inf)
    if flat is None:
        return _adamax_step(p, g, exp_avg, exp_inf, clr, beta1, beta2, eps, weight_decay, maximize)
    adamax_kernel(*flat, F(clr), F(1 - beta1), 1 - beta1 < 0.5, F(1.0 - (1 - beta1)), F(beta2), F(eps),
                  F(weight_decay), F(-1.0 if maximize else 1.0))  # (1 - beta1 < 0.5: lerp_'s choice of end)
    return None


# -- Adadelta ---------------------------------------------------------------------------------------------
def _adadelta_step(p, g, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize):
    """g <- g + wd p (negated first to maximize);  v <- rho v + (1 - rho) g^2;
    d <- sqrt(u + eps) / sqrt(v + eps) g;  u <- rho u + (1 - rho) d^2;  p <- p - lr d"""
    g = _decayed(p, g, maximize, weight_decay)
    square_avg *= rho
    square_avg += (1 - rho) * (g * g)
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps)
    delta /= std
    delta *= g
    acc_delta *= rho
    acc_delta += (1 - rho) * (delta * delta)
    p -= lr * delta


@kernel(EXACT, rows=(0, 1, 2, 3))
def adadelta_kernel(p, g, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, g_sign):
    """In the twin's order:  g <- g_sign g + wd p;  v <- v rho + (1 - rho) g^2;
    d <- sqrt(u + eps) / sqrt(v + eps) g;  u <- u rho + (1 - rho) d^2;  p <- p - lr d"""
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        v = square_avg[i] * rho + one_minus_rho * (gi * gi)
        square_avg[i] = v
        u = acc_delta[i]
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * gi
        acc_delta[i] = u * rho + one_minus_rho * (d * d)
        p[i] = p[i] - lr * d


@dispatch(_adadelta_step)
def adadelta_step(p, g, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize):
    flat = _flat_views(p, g, square_avg, acc_delta)
    if flat is None:
        return _adadelta_step(p, g, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize)
    adadelta_kernel(*flat, F(lr), F(rho), F(1 - rho), F(eps), F(weight_decay), F(-1.0 if maximize else 1.0))
    return None


# -- NAdam and RAdam: Adam's moments, then their own step -------------------------------------------------
def _nadam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step,
                mu, mu_next, mu_product):
    """(g as ``_adam_family_grad``)  m <- lerp(m, g, 1 - b1);  v <- b2 v + (1 - b2) g^2;
    d = sqrt(v / (1 - b2^t)) + eps;  p <- p - lr (1 - mu) / (1 - P) g / d - lr mu' / (1 - P mu') m / d
    (P = mu_product with this step's mu)"""
    g = _adam_family_grad(p, g, lr, weight_decay, decoupled, maximize)
    lerp_(exp_avg, g, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (g * g)
    denom = np.sqrt(exp_avg_sq / (1 - beta2**step))
    denom += eps
    p += (-lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
    p += (-lr * mu_next / (1.0 - mu_product * mu_next)) * (exp_avg / denom)


@kernel(EXACT, rows=(0, 1, 2, 3))
def nadam_kernel(p, g, m, v, decay, l2, g_sign, one_minus_beta1, lerp_from_start, lerp_back, beta2, one_minus_beta2,
                 bias_correction2, eps, coef_g, coef_m):
    """In the twin's order:  p <- p decay;  g <- g_sign g + l2 p;  m <- lerp(m, g, 1 - b1);  v <- v b2 + (1 - b2) g^2;
    d <- sqrt(v / bc2) + eps;  p <- p + coef_g (g / d) + coef_m (m / d)"""
    for i in range(p.size):
        pi = p[i] * decay
        gi = _decayed_grad(g[i], pi, l2, g_sign)
        mi = m[i]
        mi = mi + one_minus_beta1 * (gi - mi) if lerp_from_start else gi - (gi - mi) * lerp_back
        m[i] = mi
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        v[i] = vi
        d = np.sqrt(vi / bias_correction2) + eps
        p[i] = (pi + coef_g * (gi / d)) + coef_m * (mi / d)


@dispatch(_nadam_step)
def nadam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step,
               mu, mu_next, mu_product):
    flat = _flat_views(p, g, exp_avg, exp_avg_sq)
    if flat is None:
        return _nadam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                           step, mu, mu_next, mu_product)
    decay = 1 - lr * weight_decay if decoupled and weight_decay != 0 else 1.0
    nadam_kernel(*flat, F(decay), F(0.0 if decoupled else weight_decay), F(-1.0 if maximize else 1.0),
                 F(1 - beta1), 1 - beta1 < 0.5, F(1.0 - (1 - beta1)), F(beta2), F(1 - beta2), F(1 - beta2**step),
                 F(eps), F(-lr * (1.0 - mu) / (1.0 - mu_product)), F(-lr * mu_next / (1.0 - mu_product * mu_next)))
    return None


def _radam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step):
    """(g as ``_adam_family_grad``)  m <- lerp(m, g, 1 - b1);  v <- b2 v + (1 - b2) g^2;  rho_t as in RAdam's paper;
    rho_t > 5: p <- p - m / (1 - b1^t) lr sqrt(1 - b2^t) / (sqrt(v) + eps) r_t;  else p <- p - m / (1 - b1^t) lr"""
    g = _adam_family_grad(p, g, lr, weight_decay, decoupled, maximize)
    lerp_(exp_avg, g, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (g * g)
    corrected = exp_avg / (1 - beta1**step)
    rect = _radam_rect(beta2, step)
    if rect is not None:
        adaptive = (1 - beta2**step) ** 0.5 / (np.sqrt(exp_avg_sq) + eps)
        p -= corrected * lr * adaptive * rect
    else:
        p -= corrected * lr


def _radam_rect(beta2, step):
    """RAdam's variance rectification factor r_t, or None while rho_t <= 5 (no adaptive step yet)."""
    bias_correction2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t <= 5.0:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


@kernel(EXACT, rows=(0, 1, 2, 3))
def radam_kernel(p, g, m, v, decay, l2, g_sign, one_minus_beta1, lerp_from_start, lerp_back, beta2, one_minus_beta2,
                 bias_correction1, lr, rectified, bias_c2_sqrt, eps, rect):
    """In the twin's order:  p <- p decay;  g <- g_sign g + l2 p;  m <- lerp(m, g, 1 - b1);  v <- v b2 + (1 - b2) g^2;
    c <- m / bc1;  p <- p - c lr (sqrt(bc2) / (sqrt(v) + eps)) r   (rectified)  or  p <- p - c lr"""
    for i in range(p.size):
        pi = p[i] * decay
        gi = _decayed_grad(g[i], pi, l2, g_sign)
        mi = m[i]
        mi = mi + one_minus_beta1 * (gi - mi) if lerp_from_start else gi - (gi - mi) * lerp_back
        m[i] = mi
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        v[i] = vi
        c = mi / bias_correction1
        if rectified:
            p[i] = pi - c * lr * (bias_c2_sqrt / (np.sqrt(vi) + eps)) * rect
        else:
            p[i] = pi - c * lr


@dispatch(_radam_step)
def radam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step):
    flat = _flat_views(p, g, exp_avg, exp_avg_sq)
    if flat is None:
        return _radam_step(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step)
    decay = 1 - lr * weight_decay if decoupled and weight_decay != 0 else 1.0
    rect = _radam_rect(beta2, step)
    radam_kernel(*flat, F(decay), F(0.0 if decoupled else weight_decay), F(-1.0 if maximize else 1.0),
                 F(1 - beta1), 1 - beta1 < 0.5, F(1.0 - (1 - beta1)), F(beta2), F(1 - beta2), F(1 - beta1**step),
                 F(lr), rect is not None, F((1 - beta2**step) ** 0.5), F(eps), F(rect or 0.0))
    return None
