"""``Builder``: the ONNX nodes and initializers of one export, and the helpers converters share.

A converter (``ops.py``) receives the builder, the traced ``Node`` and the ONNX names of its tensor
inputs, emits nodes with ``b.add`` and returns the ONNX name of the op's result. Sizes that depend
on a dynamic axis are computed in the graph from ``Shape`` of the input that carries them
(``b.dim`` / ``b.shape``); constants a model built from its inputs are rebuilt from their recipe
(``graph/recognize.py``).
"""

from __future__ import annotations

import numpy as np

import onnx
from neural_arch.errors import ExportError
from neural_arch.graph.dims import Dim
from neural_arch.graph.ir import ConstRef
from onnx import TensorProto, helper, numpy_helper


def onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Builder:
    def __init__(self, graph, opset: int, fold: bool, root=None):
        self.g = graph
        self.opset = opset
        self.fold = fold
        self.root = root
        self.nodes: list = []
        self.inits: dict = {}  # name -> TensorProto
        self.names: dict = {}  # graph value name -> ONNX name
        self._small: dict = {}  # (dtype, bytes, shape) -> initializer name, to share small constants
        self._dims: dict = {}
        self._n = 0
        self.where = ""  # the node being converted, for error messages

    # -- names and nodes ---------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}__{self._n}"

    def add(self, op: str, inputs: list, outputs: int | list = 1, **attrs):
        """Emit one node; returns its output name (or the list of names when ``outputs`` > 1)."""
        outs = outputs if isinstance(outputs, list) else [self.fresh(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.fresh("n_" + op), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def initializer(self, array, name: str) -> str:
        if name not in self.inits:
            # np.array, not ascontiguousarray, which makes a 0-d array 1-d
            self.inits[name] = numpy_helper.from_array(np.array(array, order="C"), name)
        return name

    def const(self, array, hint: str = "const") -> str:
        """An initializer holding ``array``; small ones are shared by value."""
        array = np.asarray(array)
        if array.size <= 64:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key not in self._small:
                self._small[key] = self.initializer(array, self.fresh(hint))
            return self._small[key]
        return self.initializer(array, self.fresh(hint))

    def scalar(self, v, dtype) -> str:
        return self.const(np.array(v, dtype=dtype), "scalar")

    def ints(self, seq) -> str:
        return self.const(np.array(list(seq), dtype=np.int64), "ints")

    # -- sizes ------------------------------------------------------------------------------------------
    def dim(self, d) -> str:
        """A 1-element int64 tensor holding size ``d`` (an int or a Dim)."""
        if not isinstance(d, Dim):
            return self.ints([int(d)])
        key = repr(d)
        if key in self._dims:
            return self._dims[key]
        total = None
        for term, coef in sorted(d.terms.items(), key=lambda kc: sorted(kc[0])):
            part = None
            for sym in sorted(term):
                s = self._symbol(sym)
                part = s if part is None else self.add("Mul", [part, s])
            if part is None:
                part = self.ints([coef])
            elif coef != 1:
                part = self.add("Mul", [part, self.ints([coef])])
            total = part if total is None else self.add("Add", [total, part])
        self._dims[key] = total
        return total

    def _symbol(self, sym: str) -> str:
        key = "sym:" + sym
        if key not in self._dims:
            name, axis = self.g.symbols[sym]
            self._dims[key] = self.add("Shape", [self.value(name)], start=axis, end=axis + 1)
        return self._dims[key]

    def shape(self, dims) -> str:
        """A 1-D int64 tensor of sizes (ints, -1 and Dims)."""
        dims = list(dims)
        if not any(isinstance(d, Dim) for d in dims):
            return self.ints([int(d) for d in dims])
        return self.add("Concat", [self.dim(d) for d in dims], axis=0)

    def scalar_dim(self, d) -> str:
        """Size ``d`` as a 0-D int64 tensor (for Range)."""
        if not isinstance(d, Dim):
            return self.scalar(int(d), np.int64)
        return self.add("Squeeze", [self.dim(d), self.ints([0])])

    # -- values -----------------------------------------------------------------------------------------
    def value(self, name: str) -> str:
        """The ONNX name of graph value ``name`` (a parameter, constant or recipe is emitted on first use)."""
        if isinstance(name, ConstRef):
            name = name.name
        if name in self.names:
            return self.names[name]
        v = self.g.values[name]
        if v.kind in ("param", "buffer") or v.kind == "const" and v.recipe is None:
            out = self.initializer(v.data, name)
        elif v.kind == "const":
            out = self._from_recipe(v)
        else:
            raise ExportError(f"onnx.export: value {name} is used before it is computed")
        self.names[name] = out
        return out

    def dtype(self, name) -> np.dtype:
        if isinstance(name, ConstRef):
            name = name.name
        return self.g.values[name].dtype

    def vshape(self, name) -> tuple:
        if isinstance(name, ConstRef):
            name = name.name
        return self.g.values[name].shape

    def cast(self, x: str, from_dtype, to_dtype) -> str:
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return x
        return self.add("Cast", [x], to=onnx_dtype(to_dtype))

    def reduce(self, op: str, x: str, axes, keepdims: bool) -> str:
        """ReduceSum/Mean/Max/...; axes None means all. Axes are an input from opset 18 (13 for Sum)."""
        if axes is None:
            return self.add(op, [x], keepdims=int(keepdims))
        axes = [int(a) for a in (axes if isinstance(axes, (tuple, list)) else (axes,))]
        if op == "ReduceSum" or self.opset >= 18:
            return self.add(op, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.add(op, [x], axes=axes, keepdims=int(keepdims))

    def _from_recipe(self, v) -> str:
        kind = v.recipe[0]
        dt = v.dtype
        shape = v.shape
        if kind == "fill":
            return self.add("Expand", [self.scalar(v.recipe[1], dt), self.shape(shape)])
        if kind == "arange":
            _, axis, start, step = v.recipe
            n = shape[axis]
            begin = self.scalar_dim(start)
            count = self.scalar_dim(n)
            end = self.add("Add", [begin, self.add("Mul", [count, self.scalar(int(step), np.int64)])]) \
                if step != 1 else self.add("Add", [begin, count])
            r = self.add("Range", [begin, end, self.scalar(int(step), np.int64)])
            r = self.cast(r, np.int64, dt)
            view = [1] * len(shape)
            view[axis] = -1
            return self.add("Expand", [self.add("Reshape", [r, self.ints(view)]), self.shape(shape)])
        if kind == "input_affine":
            _, name, a, b = v.recipe
            x = self.cast(self.value(name), self.g.values[name].dtype, dt)
            x = self.add("Reshape", [x, self.shape(shape)])
            if a != 1:
                x = self.add("Mul", [x, self.scalar(a, dt)])
            if b != 0:
                x = self.add("Add", [x, self.scalar(b, dt)])
            return x
        if kind == "argmax":
            _, name, token = v.recipe
            x = self.value(name)
            if token is not None:
                x = self.add("Cast", [self.add("Equal", [x, self.scalar(token, self.g.values[name].dtype)])],
                             to=TensorProto.INT32)
            return self.cast(self.add("ArgMax", [x], axis=-1, keepdims=0), np.int64, dt)
        if kind == "causal":
            _, keep, drop, k = v.recipe
            out = self.causal_mask(shape[-2], shape[-1], k, keep, drop, dt)
            return self.add("Reshape", [out, self.shape(shape)])
        if kind == "causal_padding":
            _, name, keep, drop, k = v.recipe
            x = self.value(name)
            real = self.add("Not", [self.add("Equal", [x, self.scalar(0, self.g.values[name].dtype)])])
            real = self.add("Unsqueeze", [real, self.ints([1, 2])])  # (B, 1, 1, S)
            cond = self.add("And", [self.causal_condition(shape[-2], shape[-1], k), real])
            return self.add("Where", [cond, self.scalar(keep, dt), self.scalar(drop, dt)])
        if kind == "padded_positions":
            _, name, pad = v.recipe
            x = self.value(name)
            is_pad = self.add("Equal", [x, self.scalar(pad, self.g.values[name].dtype)])
            real = self.add("Cast", [self.add("Not", [is_pad])], to=TensorProto.INT64)
            count = self.add("CumSum", [real, self.scalar(-1, np.int64)])
            pos = self.add("Add", [self.add("Mul", [count, real]), self.scalar(pad, np.int64)])
            return self.cast(pos, np.int64, dt)
        if kind == "rotary":
            _, axis, start, freqs, fn = v.recipe
            begin = self.scalar_dim(start)
            r = self.add("Range", [begin, self.add("Add", [begin, self.scalar_dim(shape[axis])]),
                                   self.scalar(1, np.int64)])
            pos = self.add("Unsqueeze", [self.cast(r, np.int64, np.float32), self.ints([1])])  # (n, 1)
            angles = self.add("Mul", [pos, self.const(freqs.reshape(1, -1), "rotary_freqs")])
            out = self.cast(self.add("Cos" if fn == "cos" else "Sin", [angles]), np.float32, dt)
            return self.add("Reshape", [out, self.shape(shape)])
        raise ExportError(f"onnx.export: {v.recipe[1]}; pass it as an input of the model, or trace without that "
                          "dynamic axis")

    def causal_mask(self, L, S, k, keep, drop, dt) -> str:
        """(L, S): ``keep`` where key j <= query i + k, ``drop`` elsewhere."""
        return self.add("Where", [self.causal_condition(L, S, k), self.scalar(keep, dt), self.scalar(drop, dt)])

    def causal_condition(self, L, S, k) -> str:
        """(L, S) bool: key j <= query i + k."""
        zero, one = self.scalar(0, np.int64), self.scalar(1, np.int64)
        rows = self.add("Range", [zero, self.scalar_dim(L), one])
        cols = self.add("Range", [zero, self.scalar_dim(S), one])
        shifted = self.add("Add", [self.add("Unsqueeze", [rows, self.ints([1])]), self.scalar_dim(k)]) \
            if not (isinstance(k, int) and k == 0) else self.add("Unsqueeze", [rows, self.ints([1])])
        return self.add("LessOrEqual", [self.add("Unsqueeze", [cols, self.ints([0])]), shifted])

    def module(self, path: str):
        """The module instance at ``path`` in the exported model (None when exporting a function)."""
        if self.root is None:
            return None
        m = self.root
        for part in filter(None, path.split(".")):
            m = getattr(m, part) if not part.isdigit() else m[int(part)]
        return m

    # -- the model ----------------------------------------------------------------------------------------
    def model(self, inputs, outputs, doc: str) -> onnx.ModelProto:
        used = {i for n in self.nodes for i in n.input}
        inits = [t for name, t in self.inits.items() if name in used]  # e.g. a weight only used pre-transposed
        graph = helper.make_graph(self.nodes, "neural_arch", inputs, outputs, inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="neural-arch", doc_string=doc)
        model.ir_version = min(model.ir_version, 10)  # what onnxruntime reads
        return model
