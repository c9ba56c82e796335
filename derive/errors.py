"""The one exception derive raises for anything a user can get wrong."""

from __future__ import annotations


class DeriveError(ValueError):
    """Bad input or an unsupported request, as one line for a person.

    ``col`` is the 1-based column in the expression where the problem is,
    when there is one; it is already part of the message.
    """

    def __init__(self, message: str, col: int | None = None) -> None:
        self.col = col
        text = " ".join(message.split())
        super().__init__(f"column {col}: {text}" if col is not None else text)


class ShapeConflict(DeriveError):
    """Operands whose shapes cannot fit together (a DeriveError, located)."""


class TimeBudgetSpent(DeriveError):
    """The CPU-time budget ran out before there was a matrix form to return (a DeriveError; the server answers
    it as 503, not as bad input)."""
