"""The article's three expressions, as derive writes them into ``output/``.

``python -m derive.article [DIR]`` regenerates them (the golden files).
"""

from __future__ import annotations

import sys

from .cli import main

#: (file name, expression, variable): ||Ax - b||^2, z = Wx + b and a = sigma(Wx + b)
EXAMPLES = [
    ("least_squares", "norm(A @ x - b)**2", "x"),
    ("affine_by_W", "W @ x + b", "W"),
    ("affine_by_x", "W @ x + b", "x"),
    ("affine_by_b", "W @ x + b", "b"),
    ("sigmoid_layer_by_W", "sigmoid(W @ x + b)", "W"),
    ("sigmoid_layer_by_x", "sigmoid(W @ x + b)", "x"),
    ("sigmoid_layer_by_b", "sigmoid(W @ x + b)", "b"),
]


def generate(directory: str = "output") -> int:
    """Write every example into ``directory``; the exit status of the first failure, else 0."""
    for name, expr, wrt in EXAMPLES:
        status = main([expr, "--wrt", wrt, "--name", name, "-o", directory])
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(generate(*sys.argv[1:2]))
