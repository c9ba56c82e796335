"""Every op derive knows, each defined once (see :class:`derive.ops.base.Op`).

``OPS`` maps an op's name to its definition; it is read-only. The families:
leaves (variables, numbers, identities), element-wise arithmetic and
functions, linear algebra, reductions and the softmax family, reshapes and
broadcasts, convolution and pooling.
"""

from __future__ import annotations

from types import MappingProxyType

from . import build, conv, elementwise, leaves, linalg, reductions, shaping
from .base import NUMPY, Call, Gap, MissingPiece, NoRule, Op
from .build import node

FAMILIES = (leaves, elementwise, linalg, reductions, shaping, conv)

OPS: MappingProxyType[str, Op] = MappingProxyType({op.name: op for f in FAMILIES for op in f.DEFINITIONS})

__all__ = ["NUMPY", "OPS", "Call", "Gap", "MissingPiece", "NoRule", "Op", "build", "node"]
