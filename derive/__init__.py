"""derive: matrix calculus done as on paper, then proven.

>>> from derive import derive
>>> print(derive("norm(A @ x - b)**2", "x").text)
2 Aᵀ(A x - b)

Importing the package is light: numpy and SymPy load on first use of a
name below, so that the command line can answer Ctrl-C while they load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .claims import Check, check
    from .context import Limits, Progress
    from .core import derive
    from .derivation import Derivation
    from .errors import DeriveError
    from .gradcheck import check_grad

__version__ = "0.1.0"

#: public name -> the module that defines it
_HOMES = {
    "Check": "claims",
    "check": "claims",
    "Derivation": "derivation",
    "derive": "core",
    "Limits": "context",
    "Progress": "context",
    "DeriveError": "errors",
    "check_grad": "gradcheck",
}

__all__ = ["Check", "Derivation", "DeriveError", "Limits", "Progress", "check", "check_grad", "derive"]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'derive' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
