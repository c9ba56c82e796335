"""What an op is: one :class:`Op` holds everything derive knows about it.

An op's definition gives its syntax (how users write it), its shape rule,
its differentiation rules (reverse-mode ``vjp`` and forward-mode vec ``jac``,
with the identity each encodes), its evaluation at concrete sizes, its
rewrite for the simplifier and its printers (numpy, mathematics, SymPy).
A piece an op deliberately lacks is a :class:`Gap` with the reason; asking
for it raises :class:`MissingPiece`, once, centrally, naming the op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ..errors import DeriveError
from ..ir import Dim, Node, Shape

ShapeRule = Callable[[tuple[Node, ...], Any, Callable[[Dim, Dim], bool]], Shape]
Vjp = Callable[[Node, Node, int], Node | None]  # (e, adjoint of e, operand index) -> adjoint of operand
Jac = Callable[[Node, list[Node | None]], Node | None]  # (e, operands' vec Jacobians) -> e's
Eval = Callable[..., Any]  # (kit, e, *operand values) -> value at concrete sizes
Rewrite = Callable[[Node], Node]
Print = Callable[[Any, Node], tuple[str, int]]  # (printer, e) -> (text, precedence)
Convert = Callable[..., Any]  # (e, *operand SymPy objects) -> SymPy object


@dataclass(frozen=True)
class Gap:
    """A piece an op deliberately does not have, and why."""

    reason: str


class MissingPiece(DeriveError):
    """An op lacks the piece a request needs (a DeriveError: one line for a person)."""


class NoRule(MissingPiece):
    """No rule differentiates this op in the direction asked."""


@dataclass(frozen=True)
class Call:
    """One way to write an op as a function call: ``sum(x)``, ``np.sum(x)``, ``x.sum()``.

    ``build(args, keywords)`` makes the node from the parsed operands (``Node``) and
    keyword values (Python ints or None); it may raise ``ShapeError`` or ``ValueError``
    (a bad argument, reported at the call). ``keywords`` are the only keyword
    arguments accepted; ``method`` allows ``E.name(...)`` with E the first operand.
    ``numbers`` lists the positions that must be literal numbers (passed as int).
    """

    name: str
    build: Callable[[list[Any], dict[str, Any]], Node]
    arity: tuple[int, ...] = (1,)
    prefixes: tuple[str, ...] = ("",)
    keywords: tuple[str, ...] = ()
    method: bool = False
    numbers: tuple[int, ...] = ()


NUMPY = ("", "np.", "numpy.")
LINALG = ("", "np.linalg.", "numpy.linalg.")
SCIPY = ("", "scipy.special.", "special.")


@dataclass(frozen=True)
class Op:
    """Everything about one op. ``None`` for ``simplify`` means: no rewrite."""

    name: str
    shape: ShapeRule
    eval: Eval
    numpy: Print | Gap
    math: Print | Gap
    sympy: Convert | Gap
    vjp: Vjp | Gap
    jac: Jac | Gap
    identity: str = ""
    cookbook: str | None = None
    simplify: Rewrite | None = None
    transpose: Rewrite | None = None  # (T of this node) -> an equal node with the transpose pushed inside
    fuse: Rewrite | None = None  # a cleaner, stable op for this composition (log(det(X)) -> logdet(X))
    lower: Rewrite | None = None  # how generated code computes it (a product multiplied out over a diagonal)
    share: Rewrite | None = None  # the same value from parts generated code can share (conv2d by its windows)
    syntax: tuple[Call, ...] = ()

    def piece(self, name: str) -> Any:
        """The named piece; raises MissingPiece (naming the op and the reason) for a Gap."""
        value = getattr(self, name)
        if isinstance(value, Gap):
            what = {
                "numpy": "numpy code",
                "math": "printed form",
                "sympy": "SymPy matrix expression",
                "vjp": "gradient rule",
                "jac": "Jacobian rule",
            }.get(name, name)
            error = NoRule if name in ("vjp", "jac") else MissingPiece
            raise error(f"no {what} for '{self.name}': {value.reason}")
        return value


OPTIONAL = ("name", "identity", "cookbook", "simplify", "transpose", "fuse", "lower", "share", "syntax")
PIECES = tuple(f.name for f in fields(Op) if f.name not in OPTIONAL)

LEAF = Gap("a leaf has no operands to differentiate")
