"""The article's three expressions, as derive writes them into ``output/``.

``python -m derive.article [DIR]`` regenerates them (the golden files).
"""

from __future__ import annotations

import sys

from .cli import main

#: (file name, expression, variable): ||Ax - b||^2, z = Wx + b and a = sigma(Wx + b)
EXAMPLES = (
    ("least_squares", "norm(A @ x - b)**2", "x"),
    ("affine_by_W", "W @ x + b", "W"),
    ("affine_by_x", "W @ x + b", "x"),
    ("affine_by_b", "W @ x + b", "b"),
    ("sigmoid_layer_by_W", "sigmoid(W @ x + b)", "W"),
    ("sigmoid_layer_by_x", "sigmoid(W @ x + b)", "x"),
    ("sigmoid_layer_by_b", "sigmoid(W @ x + b)", "b"),
)


#: The article's promised part 2: convolution as a matrix product, and a tiny CNN's gradients.
CNN = "-(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2)))))"
PART_TWO = (
    ("conv_by_K", "conv2d(X, K)", "K", ["X=3,3", "K=2,2"]),
    ("conv_by_X", "conv2d(X, K)", "X", ["X=3,3", "K=2,2"]),
    ("tiny_cnn_by_K", CNN, "K", ["X=1,3,3", "K=2,1,2,2", "y=2"]),
    ("tiny_cnn_by_W", CNN, "W", ["X=1,3,3", "K=2,1,2,2", "y=2"]),
    ("tiny_cnn_by_X", CNN, "X", ["X=1,3,3", "K=2,1,2,2", "y=2"]),
)


def generate(directory: str = "output") -> int:
    """Write every example into ``directory``; the exit status of the first failure, else 0."""
    runs = [(n, e, w, []) for n, e, w in EXAMPLES] + list(PART_TWO)
    for name, expr, wrt, shapes in runs:
        flags = [f for s in shapes for f in ("--shape", s)]
        status = main([expr, "--wrt", wrt, *flags, "--name", name, "-o", directory])
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(generate(*sys.argv[1:2]))
