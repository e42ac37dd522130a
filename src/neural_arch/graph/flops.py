"""FLOPs per node at the traced sizes: a multiply-add counts 2, an elementwise op 1 per output.

Counts the arithmetic of the op's definition (as fvcore / torch's flop counter do for matmuls and
convolutions), not what a kernel executes; shape-only ops (reshape, permute, index) count 0.
"""

from __future__ import annotations

import math

_MOVES = {"Reshape", "Permute", "Expand", "Tile", "Cat", "Stack", "Flip", "Roll", "Index", "Gather",
          "IndexSelect", "Embedding", "ConstantPad", "NearestResize", "Triangle"}
_PER_ELEMENT = {"GELU": 8, "SiLU": 4, "Softmax": 5, "LayerNorm": 8, "RMSNorm": 5, "ChannelNorm": 8,
                "Mish": 6, "Softplus": 3}


def count(node, graph) -> int:
    out = graph.values[node.output].example_shape
    n_out = math.prod(out)
    ins = [graph.values[n].example_shape for n in node.inputs]
    op = node.op
    if op in _MOVES:
        return 0
    if op == "Linear":
        return 2 * n_out * ins[1][1] + (n_out if len(ins) > 2 else 0)
    if op == "MatMul":
        return 2 * n_out * ins[0][-1]
    if op in ("Conv2d", "DepthwiseConv2d"):
        w = ins[1]
        return 2 * n_out * math.prod(w[1:]) + (n_out if len(ins) > 2 and ins[2] else 0)
    if op == "ScaledDotProductAttention":
        q, k, v = ins[:3]
        lead = math.prod(out[:-2])
        return lead * (2 * q[-2] * k[-2] * q[-1] + 5 * q[-2] * k[-2] + 2 * q[-2] * k[-2] * v[-1])
    if op in ("Sum", "Mean", "Var", "AMax", "MaxDim", "LogSumExp", "Norm2", "AdaptiveAvgPool2d", "AvgPool2d"):
        return math.prod(ins[0]) if ins else 0
    return _PER_ELEMENT.get(op, 1) * n_out
