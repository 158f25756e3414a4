"""SPRO / ESPRO and Cayley–Menger volumes (paper 004 §3–§5, A.1–A.2)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from tfsubspace import volume
from tfsubspace.connectivity import spro
from tfsubspace.model import find_subspace_layers
from conftest import small_cnn, tiny_data

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def dense_model(seed=0, name=None):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(6, activation="relu", kernel_initializer=init, name="hidden"),
            keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1), name="head"),
        ],
        name=name,
    )


def dense_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype("float32"), (np.arange(n) % 3).astype("int64")


def vertex_matrix(layers, include_normalization=True):
    """[m, P] numpy: row i = concatenation of copy i of every subspace weight."""
    groups = [
        copies
        for layer in layers
        if include_normalization or not layer.is_normalization
        for copies in layer.subspace_weights.values()
    ]
    m = len(groups[0])
    return np.stack([np.concatenate([np.ravel(np.asarray(g[i], np.float64)) for g in groups]) for i in range(m)])


def numpy_log_volume(vertices):
    """log V = ½ log det(E Eᵀ) − log n!, E the edges from vertex 0 (Gram form)."""
    edges = vertices[1:] - vertices[0]
    sign, log_det = np.linalg.slogdet(edges @ edges.T)
    assert sign > 0
    n = len(edges)
    return 0.5 * log_det - math.lgamma(n + 1)


def numpy_scores(probabilities, labels, num_bins=15):
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    bins = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece = sum(
        abs(correct[bins == b].sum() - confidence[bins == b].sum()) for b in range(num_bins)
    ) / len(labels)
    return {
        "accuracy": correct.mean(),
        "nll": -np.mean(np.log(probabilities[np.arange(len(labels)), labels])),
        "ece": ece,
    }


# -- Cayley–Menger volumes ------------------------------------------------------


def test_unit_right_simplex_has_volume_one_over_n_factorial_in_any_dimension():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    for n in range(1, 7):
        vertices = np.vstack([np.zeros(n), np.eye(n)])
        # Embedded in 40 dimensions, rotated, and moved far from the origin.
        embedded = np.pad(vertices, [(0, 0), (0, 40 - n)]) @ rotation + 1e3
        assert float(volume.simplex_volume(embedded)) == pytest.approx(1 / math.factorial(n), rel=1e-7), n
        assert float(volume.simplex_volume(embedded, log=True)) == pytest.approx(-math.lgamma(n + 1), abs=1e-7), n


def test_regular_simplex_volume_matches_closed_form():
    for side in (1e-3, 2.5, 1e3):
        for n in (1, 2, 3, 5, 7):
            expected = side**n / math.factorial(n) * math.sqrt((n + 1) / 2**n)
            vertices = np.eye(n + 1) * side / math.sqrt(2.0)  # regular, edge `side`, in R^{n+1}
            assert float(volume.simplex_volume(vertices)) == pytest.approx(expected, rel=1e-9), (n, side)
            distances = side**2 * (1.0 - np.eye(n + 1))
            assert float(volume.cayley_menger_volume(distances)) == pytest.approx(expected, rel=1e-9), (n, side)


def test_log_volume_is_exact_where_the_volume_overflows_float64():
    n, side = 10, 1e40  # V ≈ 1e393: inf in float64, and det M ≈ 1e1600
    expected = n * math.log(side) - math.lgamma(n + 1) + 0.5 * math.log((n + 1) / 2**n)
    distances = side**2 * (1.0 - np.eye(n + 1))
    assert float(volume.cayley_menger_volume(distances, log=True)) == pytest.approx(expected, rel=1e-12)
    tiny = 1e-40 ** 2 * (1.0 - np.eye(n + 1))
    assert float(volume.cayley_menger_volume(tiny, log=True)) == pytest.approx(
        -n * math.log(1e40) - math.lgamma(n + 1) + 0.5 * math.log((n + 1) / 2**n), rel=1e-12
    )


def test_degenerate_simplex_has_zero_volume_and_minus_inf_log_volume():
    degenerate = [
        [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],  # collinear
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]],  # coplanar
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],  # repeated vertex
        [[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0]],  # a vertex at the mean
    ]
    for vertices in degenerate:
        assert float(volume.simplex_volume(np.array(vertices))) == 0.0, vertices
        assert float(volume.simplex_volume(np.array(vertices), log=True)) == -np.inf, vertices


def test_log_volume_gradient_is_finite_and_matches_finite_differences():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 6))
    vertices = tf.Variable(start)
    with tf.GradientTape() as tape:
        log_volume = volume.simplex_volume(vertices, log=True)
    gradient = tape.gradient(log_volume, vertices).numpy()
    assert np.all(np.isfinite(gradient))
    step = 1e-6
    for index in [(0, 0), (1, 3), (3, 5)]:
        plus, minus = start.copy(), start.copy()
        plus[index] += step
        minus[index] -= step
        numeric = (numpy_log_volume(plus) - numpy_log_volume(minus)) / (2 * step)
        assert gradient[index] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_jittered_log_volume_has_a_finite_gradient_at_a_degenerate_simplex():
    # The state SPRO starts every vertex in: the new vertex at the others' mean.
    base = np.random.default_rng(1).normal(size=(3, 8))
    vertices = tf.Variable(np.vstack([base, base.mean(axis=0)]))
    with tf.GradientTape() as tape:
        log_volume = volume.simplex_volume(vertices, log=True, jitter=1e-6)
    assert np.isfinite(float(log_volume))
    assert np.all(np.isfinite(tape.gradient(log_volume, vertices).numpy()))


def test_subspace_log_volume_equals_volume_of_concatenated_copies():
    model = ts.convert(small_cnn(), ts.Simplex(3), seed=0)
    layers = model.subspace_layers
    assert float(volume.subspace_log_volume(layers)) == pytest.approx(
        numpy_log_volume(vertex_matrix(layers)), rel=1e-9
    )
    assert float(volume.subspace_log_volume(layers, include_normalization=False)) == pytest.approx(
        numpy_log_volume(vertex_matrix(layers, include_normalization=False)), rel=1e-9
    )
    # A complex of two edges sharing vertex 0: log(d01 + d02).
    rows = vertex_matrix(layers)
    lengths = [np.linalg.norm(rows[1] - rows[0]), np.linalg.norm(rows[2] - rows[0])]
    assert float(volume.subspace_log_volume(layers, [(0, 1), (0, 2)])) == pytest.approx(
        math.log(sum(lengths)), rel=1e-9
    )


def test_volume_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="`squared_distances`"):
        volume.cayley_menger_volume(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`vertices`"):
        volume.simplex_volume(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="`jitter`"):
        volume.simplex_volume(np.eye(3), jitter=-1.0)
    layers = ts.convert(dense_model(), ts.Simplex(3), seed=0).subspace_layers
    with pytest.raises(ValueError, match="`points`"):
        volume.subspace_log_volume(layers, points=(0, 0))


# -- SPRO: growing a simplex ----------------------------------------------------


def test_grow_freezes_previous_vertices_and_starts_new_one_at_their_mean():
    base = dense_model()
    x, y = dense_data()
    base_values = [np.asarray(w) for w in base.trainable_weights]

    line = spro.grow(base, 2, epochs_per_vertex=1, lmbda=0.1, samples=2, train_data=(x, y), loss=LOSS, seed=0)
    line_rows = vertex_matrix(line.subspace_layers)
    groups = [copies for layer in line.subspace_layers for copies in layer.subspace_weights.values()]
    for copies, value in zip(groups, base_values):
        np.testing.assert_array_equal(np.asarray(copies[0]), value)  # vertex 0 is the base, bit for bit
    assert not np.array_equal(line_rows[1], line_rows[0])  # the new vertex moved off the base
    assert line.frozen_points == (0,)

    start = spro.grow(line, 3, epochs_per_vertex=0, lmbda=0.1, samples=2, train_data=(x, y), loss=LOSS, seed=0)
    start_rows = vertex_matrix(start.subspace_layers)
    np.testing.assert_array_equal(start_rows[:2], line_rows)
    np.testing.assert_allclose(start_rows[2], line_rows.mean(axis=0), rtol=1e-6, atol=1e-7)

    triangle = spro.grow(line, 3, epochs_per_vertex=1, lmbda=0.1, samples=2, train_data=(x, y), loss=LOSS, seed=0)
    rows = vertex_matrix(triangle.subspace_layers)
    np.testing.assert_array_equal(rows[:2], line_rows)  # previous vertices bit-identical after training
    assert not np.allclose(rows[2], start_rows[2])
    assert triangle.simplexes == ((0, 1, 2),) and triangle.frozen_points == (0, 1)
    assert [entry["vertex"] for entry in triangle.spro_history] == [1, 2]
    assert np.isfinite(triangle.spro_history[-1]["log_volume"])


def test_training_loss_is_the_mean_over_samples_minus_weighted_log_volume():
    network = ts.convert(dense_model(), ts.Simplex(3), seed=0).network
    model = spro.SimplexModel(network, samples=4, volume_weight=0.3, seed=5)
    model.compile(keras.optimizers.SGD(learning_rate=0.0), LOSS)
    x, y = dense_data(32)
    coefficients = model.sample_coefficients(0).numpy()
    assert coefficients.shape == (4, 3)
    np.testing.assert_allclose(coefficients.sum(axis=1), 1.0, rtol=1e-6)
    assert len({tuple(row) for row in coefficients.round(6)}) == 4  # four different points

    sample_losses = []
    for row in coefficients:
        model.write_coefficients(row)
        sample_losses.append(float(LOSS(y, network(x, training=True))))
    expected = np.mean(sample_losses) - 0.3 * float(model.log_volume())
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["log_volume"] == pytest.approx(float(model.log_volume()), rel=1e-6)


def test_lambda_is_normalised_by_a_random_simplex_of_the_same_structure():
    base = dense_model(seed=3)
    reference = spro.random_log_volume(base, 3)
    random_network = ts.convert(base, ts.Simplex(3), seed=0, init="independent").network
    assert reference == pytest.approx(numpy_log_volume(vertex_matrix(find_subspace_layers(random_network))), rel=1e-9)
    assert spro.normalized_lambda(0.7, reference) == pytest.approx(0.7 / abs(reference), rel=1e-12)

    x, y = dense_data(32)
    line = spro.grow(base, 2, epochs_per_vertex=0, lmbda=0.7, train_data=(x, y), loss=LOSS, seed=0)
    triangle = spro.grow(line, 3, epochs_per_vertex=0, lmbda=0.7, train_data=(x, y), loss=LOSS, seed=0)
    entry = triangle.spro_history[-1]
    assert entry["random_log_volume"] == pytest.approx(reference, rel=1e-9)
    assert triangle.volume_weight == entry["volume_weight"] == pytest.approx(0.7 / abs(reference), rel=1e-9)
    assert triangle.spro_history[0]["random_log_volume"] == pytest.approx(spro.random_log_volume(base, 2), rel=1e-9)


def test_spro_rejects_bad_arguments():
    base, (x, y) = dense_model(), dense_data(16)
    common = dict(train_data=(x, y), loss=LOSS, seed=0)
    with pytest.raises(ValueError, match="`num_vertices`"):
        spro.grow(base, 1, 1, 0.1, **common)
    with pytest.raises(ValueError, match="`samples`"):
        spro.grow(base, 2, 1, 0.1, samples=0, **common)
    with pytest.raises(ValueError, match="`lmbda`"):
        spro.grow(base, 2, 1, -1.0, **common)
    with pytest.raises(ValueError, match="`epochs_per_vertex`"):
        spro.grow(base, 2, -1, 0.1, **common)
    with pytest.raises(ValueError, match="`random_log_volume`"):
        spro.normalized_lambda(0.1, 0.0)
    network = ts.convert(base, ts.Simplex(3), seed=0).network
    with pytest.raises(ValueError, match="`simplexes`"):
        spro.SimplexModel(network, simplexes=[(0, 1), (0, 1, 2)])
    other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"`models\[1\]` does not match `models\[0\]` at weighted layer 0"):
        spro.connect_modes([base, other], 1, 0, 0.1, **common)


def test_simplex_model_config_round_trip():
    network = ts.convert(dense_model(), ts.Simplex(4), seed=0).network
    model = spro.SimplexModel(network, simplexes=[(0, 2, 3), (1, 2, 3)], samples=3, volume_weight=0.2, seed=1)
    clone = spro.SimplexModel.from_config(model.get_config())
    assert clone.simplexes == model.simplexes and clone.samples == 3 and clone.volume_weight == 0.2
    assert clone.alpha == model.alpha == [1 / 3, 0.0, 1 / 3, 1 / 3]


# -- simplicial complexes between modes ------------------------------------------


def test_connect_modes_keeps_modes_frozen_and_shares_connecting_vertices():
    modes = [dense_model(seed=0), dense_model(seed=10)]
    mode_rows = [vertex_matrix(ts.convert(m, ts.Simplex(2), init="point", seed=0).subspace_layers)[0] for m in modes]
    x, y = dense_data()
    common = dict(lmbda=0.1, samples=2, train_data=(x, y), loss=LOSS, seed=0)

    start = spro.connect_modes(modes, 1, 0, **common)
    np.testing.assert_allclose(vertex_matrix(start.subspace_layers)[2], np.mean(mode_rows, axis=0), rtol=1e-6)

    complex_ = spro.connect_modes(modes, 2, 1, **common)
    rows = vertex_matrix(complex_.subspace_layers)
    np.testing.assert_array_equal(rows[0], mode_rows[0])
    np.testing.assert_array_equal(rows[1], mode_rows[1])
    assert complex_.simplexes == ((0, 2, 3), (1, 2, 3))
    assert complex_.frozen_points == (0, 1, 2)
    assert np.isfinite(float(complex_.log_volume(jitter=0.0)))
    # Every training point lies on one of the simplexes: zero weight on the other mode.
    for row in complex_.sample_coefficients(7).numpy():
        assert row[0] == 0.0 or row[1] == 0.0


# -- ESPRO --------------------------------------------------------------------


def test_espro_ensemble_matches_numpy():
    simplexes = [
        spro.SimplexModel(ts.convert(dense_model(seed=s), ts.Simplex(3), seed=0).network, seed=s) for s in (0, 5)
    ]
    x, y = dense_data(48)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = spro.ensemble(simplexes, 3, data, seed=0)

    def probabilities(model, alpha):
        model.set_alpha(alpha)
        return tf.nn.softmax(model.predict(x, verbose=0).astype(np.float64)).numpy()

    members = [probabilities(m, p) for m, points in zip(simplexes, result["points"]) for p in points]
    assert len(members) == 6
    bases = [probabilities(m, [1.0, 0.0, 0.0]) for m in simplexes]
    for key, probs in [("espro", np.mean(members, axis=0)), ("deep_ensemble", np.mean(bases, axis=0))]:
        expected = numpy_scores(probs, y)
        for metric in ("accuracy", "nll", "ece"):
            assert result[key][metric] == pytest.approx(expected[metric], rel=1e-4, abs=1e-6), (key, metric)
    first = numpy_scores(np.mean(members[:3], axis=0), y)
    assert result["simplexes"][0]["nll"] == pytest.approx(first["nll"], rel=1e-4)


def test_espro_recomputes_batchnorm_at_every_point():
    network = ts.convert(small_cnn(), ts.Simplex(2), seed=0).network
    model = spro.SimplexModel(network, seed=0)
    x, y = tiny_data(32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match="`batchnorm_data`"):
        spro.ensemble([model], 1, data)
    result = spro.ensemble([model], 1, data, batchnorm_data=data)
    (point,) = result["points"][0]
    ts.recompute_batchnorm(model, data, alpha=point)
    probs = tf.nn.softmax(model.predict(x, verbose=0).astype(np.float64)).numpy()
    assert result["espro"]["nll"] == pytest.approx(numpy_scores(probs, y)["nll"], rel=1e-4)
