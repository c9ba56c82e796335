"""Convolution, max pooling and flatten: the article's promised part 2."""

import numpy as np
import pytest

from derive import DeriveError, check, derive
from derive.article import CNN
from derive.core import load
from derive.gradcheck import check_grad

from .reference import conv2d

SMALL_2D = {"X": (4, 4), "K": (2, 2)}
SMALL_3D = {"X": (2, 4, 3), "K": (3, 2, 2, 2)}


reference_conv = conv2d


def module(expr: str, wrt: str, shapes: dict):
    d = derive(expr, wrt, shapes)
    assert d.proof.status == "proven", d.proof
    assert d.numeric.ok, d.numeric
    return d, load(d.numpy_source("f"))


@pytest.mark.parametrize("shapes", [SMALL_2D, SMALL_3D])
def test_conv2d_value_is_cross_correlation(shapes: dict) -> None:
    _, mod = module("conv2d(X, K)", "K", shapes)
    rng = np.random.default_rng(0)
    X, K = rng.standard_normal(shapes["X"]), rng.standard_normal(shapes["K"])
    np.testing.assert_allclose(mod.f(X, K), reference_conv(X, K))


@pytest.mark.parametrize("shapes", [SMALL_2D, SMALL_3D])
def test_kernel_gradient_is_cross_correlation_with_the_upstream_gradient(shapes: dict) -> None:
    # L = sum((X ⋆ K) ∘ G)  =>  dL/dK = X ⋆ G
    d, _ = module("sum(conv2d(X, K) * G)", "K", shapes | {"G": derive("conv2d(X, K)", "K", shapes).problem.value_shape})
    assert d.text == "X ⋆ G"


@pytest.mark.parametrize("shapes", [SMALL_2D, SMALL_3D])
def test_input_gradient_is_full_convolution_with_the_flipped_kernel(shapes: dict) -> None:
    # L = sum((X ⋆ K) ∘ G)  =>  dL/dX = pad(G) ⋆ rot180(K)
    d, _ = module("sum(conv2d(X, K) * G)", "X", shapes | {"G": derive("conv2d(X, K)", "K", shapes).problem.value_shape})
    assert d.text == "pad(G) ⋆ rot180(K)"


def test_bias_gradient_sums_each_filter() -> None:
    d, _ = module("sum(conv2d(X, K, c)**2)", "c", SMALL_3D)
    assert d.text == "2 Σᵢⱼ(X ⋆ K + c)"


@pytest.mark.parametrize(("wrt", "text"), [("K", "im2col(X)"), ("X", "toeplitz(K)")])
@pytest.mark.parametrize("shapes", [{"X": (3, 3), "K": (2, 2)}, SMALL_3D])
def test_conv2d_as_a_matrix_product(shapes: dict, wrt: str, text: str) -> None:
    # vec(X ⋆ K) = im2col(X) vec(K) = toeplitz(K) vec(X): convolution as the article's W x
    d, _mod = module("conv2d(X, K)", wrt, shapes)
    assert d.text == text
    rng = np.random.default_rng(1)
    X, K = rng.standard_normal(shapes["X"]), rng.standard_normal(shapes["K"])
    vec = lambda a: np.ravel(a, order="F")  # noqa: E731
    J = np.asarray(load(d.numpy_source("f", vec_form=True)).jac_f(X, K))
    np.testing.assert_allclose(J @ vec(K if wrt == "K" else X), vec(reference_conv(X, K)), atol=1e-12)
    assert "for " not in d.numpy_source("f").split("def f(")[1]  # no Python loops over pixels


def test_maxpool_gradient_routes_to_the_maximum() -> None:
    d, mod = module("sum(maxpool(X, 2) * G)", "X", {"X": (4, 4), "G": (2, 2)})
    X = np.arange(16.0).reshape(4, 4)
    G = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1, 2, 3, 4  # each window's max is its last
    np.testing.assert_array_equal(mod.grad_f(X, G), expected)
    assert "each region" in d.proof.method


def test_maxpool_ties_go_to_the_first_maximum() -> None:
    _, mod = module("sum(maxpool(X, 2))", "X", {"X": (2, 4)})
    g = mod.grad_f(np.ones((2, 4)))
    np.testing.assert_array_equal(g, [[1, 0, 1, 0], [0, 0, 0, 0]])


def test_relu_subgradient_at_zero_is_zero() -> None:
    _, mod = module("sum(relu(x))", "x", {"x": (3,)})
    np.testing.assert_array_equal(mod.grad_f(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 1.0])


def test_maxpool_needs_divisible_sizes() -> None:
    with pytest.raises(DeriveError, match="divisible by 2"):
        derive("sum(maxpool(X, 2))", "X", {"X": (3, 4)})


def test_flatten_is_c_order() -> None:
    _d, mod = module("w @ flatten(X)", "X", {"X": (2, 3)})
    w = np.arange(6.0)
    np.testing.assert_array_equal(mod.grad_f(w, np.zeros((2, 3))), w.reshape(2, 3))


@pytest.mark.parametrize("wrt", ["K", "W", "X"])
def test_tiny_cnn_gradients_are_proven_and_checked(tiny_cnn: dict, wrt: str) -> None:
    d = tiny_cnn[wrt]  # derive(CNN, wrt, CNN_SHAPES), once per run (tests/conftest.py)
    assert d.expr == CNN
    assert d.proof.status == "proven", d.proof
    assert d.numeric.ok, d.numeric
    mod = load(d.numpy_source("f"))
    rng = np.random.default_rng(2)
    args = {"y": np.array([0.0, 1.0]), "W": rng.standard_normal((2, 2))}
    args |= {"X": rng.standard_normal((1, 3, 3)), "K": rng.standard_normal((2, 1, 2, 2))}
    names = list(d.shapes)
    values = [args[n] for n in names]
    assert check_grad(mod.f, mod.grad_f, values, wrt=names.index(wrt)) < 1e-6


def test_check_accepts_the_kernel_gradient_identity() -> None:
    assert check("sum(conv2d(X, K) * G)", "K", "2 * conv2d(X, G) / 2", {"X": (4, 4), "K": (2, 2), "G": (3, 3)}).ok
