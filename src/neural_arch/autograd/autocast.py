"""Autocast: ops choose their own precision inside ``with autocast("cpu"):`` (torch's CPU autocast).

Each ``Function`` declares one policy in its class attribute ``autocast`` (torch 2.13's CPU op lists,
``aten/src/ATen/autocast_mode.cpp``):

* ``LOWER`` (``lower_precision_fp``): matrix products, linear, convolutions, attention. Floating inputs
  are cast to the autocast dtype (bfloat16 by default) and the op runs there.
* ``FP32`` (``fp32``): the losses (cross_entropy, mse_loss, ...), ``prod`` and other ops whose
  accuracy needs float32. Low-precision inputs are cast up to float32.
* ``PROMOTE`` (``promote``): ``cat`` and ``stack``: every floating input is cast to the widest floating
  dtype among them.
* ``None`` (the default): the op is not on any list and follows its inputs. On the CPU this includes
  softmax, layer_norm and the activations: they run in bfloat16 when given bfloat16.

float64 inputs are never cast (as in torch), nor integer ones. A cast is an ordinary ``Cast`` node of
the graph, so the gradient of a float32 parameter used by a bfloat16 matmul comes back as float32
(float32 master weights). With ``cache_enabled`` the low-precision copy of a leaf that requires grad
(a parameter) is made once per outermost ``autocast`` region, however many ops read it.

The state is per thread (as torch's). ``Function.apply`` pays one test of a module global while no
thread has autocast on (:data:`neural_arch.autograd.function._autocast`).
"""

from __future__ import annotations

import functools
import threading

from neural_arch.autograd import function as _function
from neural_arch.autograd.grad_mode import STATE as _GRAD
from neural_arch.backend.dtypes import bfloat16, float16, float32, float64, resolve_dtype
from neural_arch.errors import DeviceError, DTypeError

LOWER = "lower_precision_fp"
FP32 = "fp32"
PROMOTE = "promote"

_DEFAULT_DTYPE = {"cpu": bfloat16}  # torch's default for CPU autocast
_LOW_DTYPES = tuple(d for d in (bfloat16, float16) if d is not None)


class _State(threading.local):
    def __init__(self):
        self.enabled = False
        self.dtype = bfloat16
        self.cache_enabled = True
        self.nesting = 0  # open autocast blocks (enabled or not); the cache is cleared when it returns to 0
        self.cache: dict = {}


STATE = _State()
_active_threads = 0  # threads whose autocast is on: Function.apply's hook is installed while > 0
_lock = threading.Lock()


def _count_active(delta: int) -> None:
    global _active_threads
    with _lock:
        _active_threads += delta
        _function._autocast = cast_inputs if _active_threads > 0 else None


class autocast:  # noqa: N801 - torch's name
    """Run the ops inside in mixed precision: torch's ``torch.autocast`` for ``device_type="cpu"``.

    Args:
        device_type: ``"cpu"`` (the only device with autocast here).
        dtype: the low-precision dtype of the ``LOWER`` ops: ``na.bfloat16`` (default) or ``na.float16``.
        enabled: ``False`` turns autocast off inside an enclosing autocast block.
        cache_enabled: cast each parameter once per outermost block (default True).

    Usable as a context manager or a decorator::

        with na.autocast("cpu", dtype=na.bfloat16):
            loss = F.cross_entropy(model(x), y)   # matmuls in bfloat16, the loss in float32
        loss.backward()                           # outside autocast, as torch recommends

    Where it differs from torch: an unsupported ``device_type`` or ``dtype`` is an error
    (``DeviceError`` / ``DTypeError``), where torch warns and disables autocast.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        if not isinstance(device_type, str) or device_type.split(":")[0] != "cpu":
            raise DeviceError(f"autocast: device_type={device_type!r} is not supported; neural-arch autocasts on "
                              "'cpu' only")
        if bfloat16 is None:  # pragma: no cover - depends on the environment (the bf16 extra)
            raise DTypeError("autocast needs bfloat16, which comes from the ml_dtypes package: pip install ml_dtypes")
        dtype = _DEFAULT_DTYPE["cpu"] if dtype is None else resolve_dtype(dtype)
        if dtype not in _LOW_DTYPES:
            raise DTypeError(f"autocast: dtype={dtype} is not supported on the CPU; use na.bfloat16 or na.float16")
        self.device = "cpu"
        self.fast_dtype = dtype
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)

    def __enter__(self):
        s = STATE
        self._prev = (s.enabled, s.dtype, s.cache_enabled)
        s.nesting += 1
        s.enabled, s.dtype, s.cache_enabled = self._enabled, self.fast_dtype, self._cache_enabled
        if s.enabled != self._prev[0]:
            _count_active(1 if s.enabled else -1)
        return self

    def __exit__(self, *exc):
        s = STATE
        s.nesting -= 1
        if s.nesting == 0:
            s.cache.clear()
        was = s.enabled
        s.enabled, s.dtype, s.cache_enabled = self._prev
        if s.enabled != was:
            _count_active(1 if s.enabled else -1)
        return False

    def __call__(self, fn):
        """Decorate ``fn`` so that every call runs inside this autocast block."""
        args = (self.device, self.fast_dtype, self._enabled, self._cache_enabled)

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with autocast(*args):
                return fn(*a, **kw)

        return wrapper


def is_autocast_enabled(device_type: str = "cpu") -> bool:
    """Whether autocast is on in this thread (torch's ``torch.is_autocast_enabled(device_type)``)."""
    return device_type == "cpu" and STATE.enabled


def get_autocast_dtype(device_type: str = "cpu"):
    """The low-precision dtype autocast uses in this thread (bfloat16 unless an ``autocast`` set another)."""
    return STATE.dtype


def is_autocast_cache_enabled() -> bool:
    """Whether autocast caches the low-precision copies of parameters in this thread."""
    return STATE.cache_enabled


def clear_autocast_cache() -> None:
    """Drop this thread's cached low-precision copies of parameters."""
    STATE.cache.clear()


# -- the hook Function.apply calls while autocast is on (in any thread) ------------------------------
def cast_inputs(cls, inputs: tuple) -> tuple:
    """``(inputs, narrow)``: the inputs of op ``cls`` as its autocast policy wants them (the same tuple
    when nothing changes), and the dtype its output must have (None: whatever the op returns).

    ``narrow`` is set for a LOWER op that got a low-precision input: its output is stored in that dtype
    even where the kernel computed and returned float32 (NumPy has no bfloat16 GEMM).
    """
    s = STATE
    policy = cls.autocast
    if policy is None or not s.enabled:
        return inputs, None
    return _cast_for(policy, inputs, s)


def autocast_args(policy: str, *tensors):
    """``tensors`` (None allowed) cast as ``policy`` wants when autocast is on in this thread: for a
    function that torch lists as a whole but that may compose several ops (``linear``)."""
    s = STATE
    if not s.enabled:
        return tensors
    present = tuple(t for t in tensors if t is not None)
    cast = iter(_cast_for(policy, present, s)[0])
    return tuple(None if t is None else next(cast) for t in tensors)


def _cast_for(policy: str, inputs: tuple, s) -> tuple:
    narrow = None
    if policy == LOWER:
        target = s.dtype
    elif policy == FP32:
        target = float32
    else:  # PROMOTE: the widest floating dtype among the inputs, starting from the autocast dtype
        target = s.dtype
        for t in inputs:
            d = t.data.dtype
            if d in _FLOATING and d != target:
                target = float64 if float64 in (d, target) else float32
    out = None
    for i, t in enumerate(inputs):
        d = t.data.dtype
        if d == target or d == float64 or d not in _FLOATING:
            continue
        if out is None:
            out = list(inputs)
        out[i] = _cast(t, target, s, policy == LOWER)
    if policy == LOWER:
        dtypes = {t.data.dtype for t in inputs}
        narrow = target if float64 not in dtypes and (target in dtypes or out is not None) else None
    return (inputs if out is None else tuple(out)), narrow


_FLOATING = frozenset(d for d in (float16, bfloat16, float32, float64) if d is not None)


def _cast(t, dtype, s, may_cache: bool):
    """``t`` as ``dtype`` through a ``Cast`` node; a parameter's low-precision copy comes from the cache."""
    if not (may_cache and s.cache_enabled and t.requires_grad and t._ctx is None):
        return t.to(dtype)
    # NOTE: a copy made under no_grad has no graph: never reuse it with grad on
    key = (id(t), dtype, _GRAD.grad_enabled)
    hit = s.cache.get(key)
    if hit is not None and hit[0] is t:
        return hit[1]
    cast = t.to(dtype)
    s.cache[key] = (t, cast)  # keeps t alive, so its id is not reused while the entry exists
    return cast
