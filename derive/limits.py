"""Bounds on the work one request may ask for; each can be raised.

From Python: ``derive.limits.LIMITS.entries = 20000``. From the command
line: ``--max-length``, ``--max-depth``, ``--max-entries``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    length: int = 2000  # characters in an expression
    depth: int = 60  # nesting of operations in an expression
    entries: int = 5000  # symbols written out in an element-wise proof


LIMITS = Limits()


def how_to_raise(field: str) -> str:
    flag = {"length": "--max-length", "depth": "--max-depth", "entries": "--max-entries"}[field]
    return f"raise it with {flag}, or derive.limits.LIMITS.{field} in Python"
