"""Geometry: coefficients against the papers' formulas, sampling moments, checks."""

import math

import numpy as np
import pytest

import tfsubspace as ts


def bernstein(num_bends, t):
    degree = num_bends + 1
    return np.array([math.comb(degree, i) * t**i * (1 - t) ** (degree - i) for i in range(degree + 1)])


def polychain_paper(num_bends, t):
    """Paper 003 A.3, literally: find the segment i, then the two weights."""
    n = num_bends
    c = np.zeros(n + 2)
    i = min(int(np.floor(t * (n + 1))), n)
    c[i + 1] = (n + 1) * (t - i / (n + 1))
    c[i] = (n + 1) * ((i + 1) / (n + 1) - t)
    return c


@pytest.mark.parametrize("t", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_line_coefficients_are_one_minus_alpha_and_alpha(t):
    np.testing.assert_allclose(ts.Line().coefficients(t), [1 - t, t], atol=1e-7)


@pytest.mark.parametrize("num_bends", [0, 1, 2, 4])
@pytest.mark.parametrize("t", [0.0, 0.13, 0.5, 0.77, 1.0])
def test_bezier_coefficients_are_bernstein_polynomials(num_bends, t):
    np.testing.assert_allclose(ts.Bezier(num_bends).coefficients(t), bernstein(num_bends, t), atol=1e-6)


def test_quadratic_bezier_matches_paper_001_with_bend_in_the_middle():
    # 001 §3: (1−α)² ω1 + 2α(1−α) ω3 + α² ω2, with ω3 the bend: ours is [ω1, ω3, ω2].
    a = 0.3
    np.testing.assert_allclose(ts.Bezier(1).coefficients(a), [(1 - a) ** 2, 2 * a * (1 - a), a**2], atol=1e-7)


@pytest.mark.parametrize("num_bends", [0, 1, 2, 3])
@pytest.mark.parametrize("t", [0.0, 0.1, 0.25, 0.5, 0.66, 0.8, 1.0])
def test_polychain_coefficients_match_paper_003_piecewise_formula(num_bends, t):
    np.testing.assert_allclose(ts.PolyChain(num_bends).coefficients(t), polychain_paper(num_bends, t), atol=1e-6)


def test_polychain_passes_through_each_bend_at_its_knot():
    chain = ts.PolyChain(num_bends=2)
    for i in range(4):
        expected = np.zeros(4)
        expected[i] = 1
        np.testing.assert_allclose(chain.coefficients(i / 3), expected, atol=1e-6)


def test_simplex_coefficients_are_alpha_itself():
    np.testing.assert_allclose(ts.Simplex(4).coefficients([0.1, 0.2, 0.3, 0.4]), [0.1, 0.2, 0.3, 0.4], atol=1e-7)


@pytest.mark.parametrize(
    "shape, m", [(ts.Line(), 2), (ts.Bezier(3), 5), (ts.PolyChain(2), 4), (ts.Simplex(6), 6)]
)
def test_num_points_and_center(shape, m):
    assert shape.num_points == m
    c = shape.coefficients(shape.center).numpy()
    assert c.shape == (m,) and abs(c.sum() - 1) < 1e-6


def test_batched_coefficients_equal_one_by_one():
    t = np.array([0.0, 0.2, 0.9], "float32")
    for shape in [ts.Line(), ts.Bezier(2), ts.PolyChain(1)]:
        batch = shape.coefficients(t).numpy()
        assert batch.shape == (3, shape.num_points)
        for row, value in zip(batch, t):
            np.testing.assert_allclose(row, shape.coefficients(float(value)), atol=1e-6)


def test_curve_samples_are_uniform_on_unit_interval():
    alpha = ts.Line().sample(seed=3, num=200_000).numpy()
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert abs(alpha.mean() - 0.5) < 0.003
    assert abs(alpha.var() - 1 / 12) < 0.002
    hist, _ = np.histogram(alpha, bins=10, range=(0, 1))
    assert np.all(np.abs(hist / len(alpha) - 0.1) < 0.005)


@pytest.mark.parametrize("m", [2, 3, 6])
def test_simplex_samples_have_dirichlet_one_moments(m):
    alpha = ts.Simplex(m).sample(seed=7, num=200_000).numpy().astype(np.float64)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
    assert alpha.min() >= 0
    # Dirichlet(1,...,1): E = 1/m, Var = (m−1)/(m²(m+1)), Cov = −1/(m²(m+1)).
    np.testing.assert_allclose(alpha.mean(0), 1 / m, atol=0.003)
    cov = np.cov(alpha.T)
    np.testing.assert_allclose(np.diag(cov), (m - 1) / (m**2 * (m + 1)), rtol=0.03)
    off = cov[~np.eye(m, dtype=bool)]
    np.testing.assert_allclose(off, -1 / (m**2 * (m + 1)), rtol=0.06)


def test_same_seed_same_sample_and_different_seed_different_sample():
    s = ts.Simplex(3)
    np.testing.assert_array_equal(s.sample(5), s.sample(5))
    assert not np.allclose(s.sample(5), s.sample(6))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ts.Bezier(num_bends=-1), "num_bends"),
        (lambda: ts.PolyChain(num_bends=1.5), "num_bends"),
        (lambda: ts.Simplex(num_vertices=1), "num_vertices"),
        (lambda: ts.Simplex(num_vertices="3"), "num_vertices"),
        (lambda: ts.Line().coefficients(1.5), r"alpha.*\[0, 1\]"),
        (lambda: ts.Line().coefficients(-0.1), r"alpha.*\[0, 1\]"),
        (lambda: ts.Bezier().coefficients(float("nan")), "alpha"),
        (lambda: ts.Line().validate_alpha([0.5, 0.5]), "scalar"),
        (lambda: ts.Simplex(3).coefficients([0.5, 0.5]), "vector of 3"),
        (lambda: ts.Simplex(3).coefficients([0.5, 0.6, -0.1]), "non-negative"),
        (lambda: ts.Simplex(3).coefficients([0.2, 0.2, 0.2]), "sum to 1"),
        (lambda: ts.Simplex(2).coefficients([float("nan"), 1.0]), "finite"),
        (lambda: ts.get_shape("circle"), "shape"),
    ],
)
def test_invalid_shape_or_alpha_raises_value_error_naming_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_shapes_round_trip_their_config():
    for shape in [ts.Line(), ts.Bezier(3), ts.PolyChain(2), ts.Simplex(5)]:
        assert type(shape).from_config(shape.get_config()) == shape
