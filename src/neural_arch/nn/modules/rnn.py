"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their cells, with torch's parameter names, shapes and init.

A layer runs, per layer and direction, one op of ``ops/recurrent.py`` over the whole sequence
(forward saves the gates, backward runs BPTT), so a torch ``state_dict`` loads with
``strict=True`` and the arithmetic matches torch's formulas:

    weight_ih_l{k}[_reverse] (G*H, I_k)   weight_hh_l{k}[_reverse] (G*H, P)
    bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] (G*H,)   weight_hr_l{k}[_reverse] (P, H) (LSTM proj_size)

G = 1 (RNN), 4 (LSTM: gates i, f, g, o), 3 (GRU: r, z, n); P = proj_size or H; I_0 = input_size,
I_k = P * num_directions. Every weight and bias starts U(-1/sqrt(H), 1/sqrt(H)), as torch.

Inputs are ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``(T, I)`` unbatched, or a
:class:`~neural_arch.nn.utils.rnn.PackedSequence` (then the output is packed too).
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.autocast import LOWER, PROMOTE, autocast, autocast_args
from neural_arch.autograd.autocast import STATE as autocast_state
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param
from neural_arch.nn.utils.rnn import PackedSequence, _packed_index, _unpack
from neural_arch.ops.index import index_select
from neural_arch.ops.recurrent import gru_layer, lstm_layer, rnn_layer
from neural_arch.ops.recurrent_wave import lstm_pair, pair_applies
from neural_arch.ops.shape import cat, stack, transpose

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _zeros_like_state(x: Tensor, *shape) -> Tensor:
    return Tensor(np.zeros(shape, x.dtype if is_floating(x.data.dtype) else np.float32))  # bfloat16 included


def _composed_lstm(x, h0, c0, *weights):
    """``lstm_layer`` with the dtypes torch's LSTMCell gives under autocast: its composed cell (nn.LSTM runs
    oneDNN's LSTM, on the low-precision list) lowers linear, then mixes the gates with the state in the
    state's dtype."""
    if not autocast_state.enabled:
        return lstm_layer(x, h0, c0, *weights)
    x, h0, c0, *weights = autocast_args(PROMOTE, x, h0, c0, *autocast_args(LOWER, *weights))
    with autocast("cpu", enabled=False):
        return lstm_layer(x, h0, c0, *weights)


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrent layer that ``RNN``, ``LSTM`` and ``GRU`` share."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ConfigError(f"{name}: dropout should be a number in [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ConfigError(f"{name}: hidden_size and num_layers must be positive, got {hidden_size}, {num_layers}")
        if proj_size < 0 or (proj_size and (mode != "LSTM" or proj_size >= hidden_size)):
            raise ConfigError(f"{name}: proj_size must be 0, or (LSTM only) in [1, hidden_size), got {proj_size}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        kw = dict(dtype=dtype, device=device)
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                params = {f"weight_ih{sfx}": empty_param(gate_size, layer_input, **kw),
                          f"weight_hh{sfx}": empty_param(gate_size, real_hidden, **kw)}
                if bias:
                    params[f"bias_ih{sfx}"] = empty_param(gate_size, **kw)
                    params[f"bias_hh{sfx}"] = empty_param(gate_size, **kw)
                if proj_size:
                    params[f"weight_hr{sfx}"] = empty_param(proj_size, hidden_size, **kw)
                for pname, p in params.items():
                    self.register_parameter(pname, p)
                self._flat_weights_names.extend(params)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            init.uniform_(getattr(self, name), -bound, bound)

    @property
    def all_weights(self) -> list:
        """The parameters per layer-direction, each list in torch's order (w_ih, w_hh, b_ih, b_hh, w_hr)."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def flatten_parameters(self) -> None:
        """Nothing to do here (torch packs weights for cuDNN); kept so that torch code runs unchanged."""

    def _weights(self, layer: int, direction: int):
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        get = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _run_layer(self, x, h0, c0, layer, direction, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, direction)
        reverse = direction == 1
        if self.mode == "LSTM":
            return lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse=reverse, batch_sizes=batch_sizes)
        if self.mode == "GRU":
            return gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=reverse, batch_sizes=batch_sizes) + (None,)
        nonlinearity = "tanh" if self.mode == "RNN_TANH" else "relu"
        return rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse=reverse,
                         batch_sizes=batch_sizes) + (None,)

    def _pair_runs(self, x, layer, batch_sizes) -> bool:
        """Whether layers ``layer`` and ``layer + 1`` run as one wavefront op (``ops/recurrent_wave.py``): an
        LSTM's, one direction, no projection, no packed batch, no dropout between them, autocast off, and the
        arrays that op takes (``pair_applies``)."""
        if (self.mode != "LSTM" or layer + 1 >= self.num_layers or self.bidirectional or self.proj_size
                or batch_sizes is not None or (self.dropout and self.training) or autocast_state.enabled):
            return False
        weights = [w.data for w in (*self._weights(layer, 0)[:4], *self._weights(layer + 1, 0)[:4]) if w is not None]
        return pair_applies(x.data, *weights)

    def forward(self, input, hx=None):  # noqa: A002
        """``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``), h_n of shape (num_layers * directions, B, P)."""
        name = type(self).__name__
        packed = isinstance(input, PackedSequence)
        batch_sizes = sorted_idx = unsorted_idx = None
        unbatched = False
        if packed:
            x, _ = _unpack(input)
            batch_sizes = tuple(np.asarray(input.batch_sizes.data).tolist())
            sorted_idx, unsorted_idx = input.sorted_indices, input.unsorted_indices
        else:
            if input.ndim not in (2, 3):
                raise ShapeError(f"{name}: expected a 2-d (unbatched) or 3-d input, got {shape_str(input.shape)}")
            unbatched = input.ndim == 2
            x = input.unsqueeze(1) if unbatched else (transpose(input, 0, 1) if self.batch_first else input)
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has {x.shape[-1]} features per step, expected input_size="
                             f"{self.input_size}")
        directions = 2 if self.bidirectional else 1
        B, H, P = x.shape[1], self.hidden_size, self.proj_size or self.hidden_size
        L = self.num_layers * directions
        h0, c0 = (hx if self.mode == "LSTM" else (hx, None)) if hx is not None else (None, None)
        h0 = self._state(h0, x, (L, B, P), unbatched, sorted_idx, "h0")
        c0 = self._state(c0, x, (L, B, H), unbatched, sorted_idx, "c0") if self.mode == "LSTM" else None
        h_n, c_n = [], []
        layer = 0
        while layer < self.num_layers:
            if self._pair_runs(x, layer, batch_sizes):  # layers `layer` and `layer + 1` as a wavefront
                x, (h1, c1), (h2, c2) = lstm_pair(x, (h0[layer], c0[layer]), (h0[layer + 1], c0[layer + 1]),
                                                  self._weights(layer, 0)[:4], self._weights(layer + 1, 0)[:4])
                h_n += [h1, h2]
                c_n += [c1, c2]
                layer += 2
                continue
            outs = []
            for d in range(directions):
                k = layer * directions + d
                y, h, c = self._run_layer(x, h0[k], None if c0 is None else c0[k], layer, d, batch_sizes)
                outs.append(y)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if directions == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
            layer += 1
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if self.mode == "LSTM" else None
        if packed:
            T = x.shape[0]
            flat = x.reshape(T * B, x.shape[2])
            output = PackedSequence(index_select(flat, 0, _packed_index(np.asarray(batch_sizes), B)),
                                    input.batch_sizes, sorted_idx, unsorted_idx)
            if unsorted_idx is not None:
                h_n = index_select(h_n, 1, unsorted_idx)
                c_n = None if c_n is None else index_select(c_n, 1, unsorted_idx)
        elif unbatched:
            output, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        else:
            output = transpose(x, 0, 1) if self.batch_first else x
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _state(self, state, x, shape, unbatched, sorted_idx, what):
        if state is None:
            return _zeros_like_state(x, *shape)
        if unbatched:
            if state.ndim != 2:
                raise ShapeError(f"{type(self).__name__}: for an unbatched input {what} must be 2-d "
                                 f"{shape_str((shape[0], shape[2]))}, got {shape_str(state.shape)}")
            state = state.unsqueeze(1)
        if tuple(state.shape) != shape:
            raise ShapeError(f"{type(self).__name__}: expected {what} of shape {shape_str(shape)}, "
                             f"got {shape_str(state.shape)}")
        return state if sorted_idx is None else index_select(state, 1, sorted_idx)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for key, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (``nonlinearity='relu'``: relu).

    Args as torch's: ``input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False``. Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"RNN: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o as torch; ``proj_size`` > 0 projects h by ``weight_hr``).

    Returns ``(output, (h_n, c_n))``; ``hx`` is ``(h_0, c_0)`` or None (zeros).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n as torch: ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``).

    Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


# -- cells: one step, the same ops with a sequence of length 1 --------------------------------------------
class RNNCellBase(Module):
    """The parameters every cell has: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        kw = dict(dtype=dtype, device=device)
        self.weight_ih = empty_param(num_chunks * hidden_size, input_size, **kw)
        self.weight_hh = empty_param(num_chunks * hidden_size, hidden_size, **kw)
        if bias:
            self.bias_ih = empty_param(num_chunks * hidden_size, **kw)
            self.bias_hh = empty_param(num_chunks * hidden_size, **kw)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) for every parameter, as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _step_input(self, input, hx, what="hx"):  # noqa: A002
        """(x as a one-step sequence (1, B, I), hx (B, H) or None, whether the input was unbatched)."""
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: expected input (B, {self.input_size}) or ({self.input_size},), "
                             f"got {shape_str(input.shape)}")
        unbatched = input.ndim == 1
        x = input.reshape(1, 1, -1) if unbatched else input.unsqueeze(0)
        if hx is not None:
            hx = hx.unsqueeze(0) if unbatched else hx
            if tuple(hx.shape) != (x.shape[1], self.hidden_size):
                raise ShapeError(f"{name}: expected {what} of shape {shape_str((x.shape[1], self.hidden_size))}, "
                                 f"got {shape_str(hx.shape)}")
        return x, hx, unbatched

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """One Elman step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu). Returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        x, hx, unbatched = self._step_input(input, hx)
        hx = _zeros_like_state(x, x.shape[1], self.hidden_size) if hx is None else hx
        _, h = rnn_layer(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    """One LSTM step; ``hx`` is ``(h, c)`` or None (zeros). Returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):  # noqa: A002
        h, c = (None, None) if hx is None else hx
        x, h, unbatched = self._step_input(input, h, "h")
        _, c, _ = self._step_input(input, c, "c")
        B = x.shape[1]
        h = _zeros_like_state(x, B, self.hidden_size) if h is None else h
        c = _zeros_like_state(x, B, self.hidden_size) if c is None else c
        _, h, c = _composed_lstm(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step. Returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):  # noqa: A002
        x, hx, unbatched = self._step_input(input, hx)
        hx = _zeros_like_state(x, x.shape[1], self.hidden_size) if hx is None else hx
        _, h = gru_layer(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h.squeeze(0) if unbatched else h
