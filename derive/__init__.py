"""derive: matrix calculus done as on paper, then proven.

>>> from derive import derive
>>> print(derive("norm(A @ x - b)**2", "x").text)
2 Aᵀ(A x - b)
"""

from .check import Check, check
from .context import Limits, Progress
from .core import derive
from .derivation import Derivation
from .errors import DeriveError
from .gradcheck import check_grad

__all__ = ["Check", "Derivation", "DeriveError", "Limits", "Progress", "check", "check_grad", "derive"]
