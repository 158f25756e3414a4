"""The simplex grid of BatchNormGrid: Freudenthal barycentric weights, computed in the graph."""

import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from conftest import freudenthal_numpy
from tfsubspace.batchnorm_grid import (MAX_SIMPLEX_ANCHORS, BatchNormGrid, default_anchors, default_resolution,
                                       num_simplex_anchors, simplex_grid)

RNG = np.random.default_rng(0)


def grid(m, resolution=None):
    return BatchNormGrid(ts.Simplex(m), default_anchors(ts.Simplex(m), resolution=resolution), {})


def random_points(m, n):
    """Dirichlet points, a few on faces and edges (some coordinates 0)."""
    points = RNG.dirichlet(np.ones(m), n)
    points[: n // 4, 0] = 0.0
    return (points / points.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("m, resolution", [(2, 5), (3, 1), (3, 4), (4, 3), (6, 3)])
def test_weights_are_non_negative_sum_to_one_and_reproduce_alpha(m, resolution):
    g = grid(m, resolution)
    anchors = np.asarray(g.anchors)
    assert len(anchors) == num_simplex_anchors(m, resolution)
    for alpha in random_points(m, 40):
        w = g.weights(alpha).numpy()
        assert w.min() >= 0.0 and abs(w.sum() - 1.0) < 1e-6
        assert np.count_nonzero(w) <= m  # one sub-simplex: at most m anchors
        np.testing.assert_allclose(w @ anchors, alpha, atol=1e-6)  # barycentric: Σ w_a·a = α


@pytest.mark.parametrize("m, resolution", [(3, 4), (4, 2)])
def test_weights_are_one_hot_at_every_grid_point(m, resolution):
    g = grid(m, resolution)
    for index, anchor in enumerate(g.anchors):
        np.testing.assert_allclose(g.weights(np.float32(anchor)).numpy(), np.eye(len(g.anchors))[index], atol=1e-6)


@pytest.mark.parametrize("m, resolution", [(3, 8), (4, 3)])
def test_weights_agree_with_a_numpy_barycentric_solve(m, resolution):
    g = grid(m, resolution)
    index = {tuple(k): i for i, k in enumerate(simplex_grid(m, resolution).tolist())}
    for alpha in random_points(m, 12):
        expected = np.zeros(len(g.anchors))
        for counts, weight in freudenthal_numpy(alpha, resolution).items():
            expected[index[counts]] = weight
        np.testing.assert_allclose(g.weights(alpha).numpy(), expected, atol=1e-5)


def test_weights_are_continuous_across_cell_boundaries():
    g = grid(3, 4)
    # Crossing the boundary z_1 = 1 (α_1 = 1/4) and the diagonal z_1 = z_2 − 1 of a cell.
    for alpha in ([0.25, 0.35, 0.4], [0.3, 0.25, 0.45]):
        alpha = np.asarray(alpha)
        step = 1e-4 * np.array([1.0, -1.0, 0.0])
        below, above = g.weights((alpha - step).astype(np.float32)), g.weights((alpha + step).astype(np.float32))
        assert np.abs(below.numpy() - above.numpy()).max() < 1e-3


def test_weights_run_in_a_graph_on_a_symbolic_alpha():
    g = grid(3, 8)
    weights = tf.function(g.weights, input_signature=[tf.TensorSpec([3], tf.float32)])
    alpha = np.array([0.1, 0.2, 0.7], np.float32)
    np.testing.assert_allclose(weights(alpha).numpy(), g.weights(alpha).numpy(), atol=1e-7)


def test_default_resolution_keeps_the_anchors_capped_up_to_many_vertices():
    assert default_resolution(3) == 8  # measured: the simplex(3) gap falls to the line's (docstring)
    for m in range(2, 13):
        r = default_resolution(m)
        assert r >= 1 and (r == 1 or num_simplex_anchors(m, r) <= MAX_SIMPLEX_ANCHORS)
    assert default_resolution(6) == 3 and num_simplex_anchors(6, 3) == 56


def test_a_bad_resolution_is_one_line_value_error():
    with pytest.raises(ValueError, match="`batchnorm_resolution` must be an integer >= 1"):
        default_anchors(ts.Simplex(3), resolution=0)
    with pytest.raises(ValueError, match="`anchors` of a simplex must be the whole grid"):
        BatchNormGrid(ts.Simplex(3), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], {})
