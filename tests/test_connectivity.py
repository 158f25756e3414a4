"""Curves between trained networks, curve metrics and loss-surface planes (paper 003)."""

import math
import os

import keras
import numpy as np
import pytest
from conftest import small_cnn, tiny_data

import tfsubspace as ts
from tfsubspace import evaluation
from tfsubspace.connectivity import connect, flat_weights, plane
from tfsubspace.connectivity.matching import weighted_layers


def trained_cnn(x, seed):
    """A tiny CNN with its own weights and non-default batch-norm statistics."""
    keras.utils.set_random_seed(seed)
    net = small_cnn()
    for _ in range(3):
        net(x, training=True)  # moves the moving statistics away from 0 / 1
    return net


def weights_by_path(net):
    return {f"{path}/{v.name}": v.numpy() for path, layer in weighted_layers(net) for v in layer.weights}


def copy_batchnorm_statistics(source, model):
    """Gives the connected model `source`'s own moving statistics (layers matched by name)."""
    own = {layer.name: layer for layer in source.layers}
    for layer in model.network.layers:
        bn = getattr(layer, "layer", layer)  # the BatchNormalization a Subspace wraps
        if isinstance(bn, keras.layers.BatchNormalization):
            bn.moving_mean.assign(own[layer.name].moving_mean)
            bn.moving_variance.assign(own[layer.name].moving_variance)


def load_flat(net, vector):
    offset = 0
    for variable in net.trainable_weights:
        size = int(np.prod(variable.shape))
        variable.assign(vector[offset : offset + size].reshape(variable.shape))
        offset += size


def cross_entropy(logits, labels):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


# -- connect --------------------------------------------------------------------


def test_connect_puts_endpoints_first_and_last_and_bends_evenly_on_the_segment():
    x, _ = tiny_data()
    a, b = trained_cnn(x, 1), trained_cnn(x, 2)
    model = connect(a, b, ts.Bezier(num_bends=2), seed=0)
    assert model.frozen_points == (0, 3)
    for layer in model.subspace_layers:
        source_a, source_b = a.get_layer(layer.name), b.get_layer(layer.name)
        for copies, va, vb in zip(layer.subspace_weights.values(), source_a.trainable_weights, source_b.trainable_weights):
            wa, wb = va.numpy(), vb.numpy()
            np.testing.assert_array_equal(copies[0].numpy(), wa)
            np.testing.assert_array_equal(copies[3].numpy(), wb)
            np.testing.assert_allclose(copies[1].numpy(), wa + (wb - wa) / 3, atol=1e-6)
            np.testing.assert_allclose(copies[2].numpy(), wa + 2 * (wb - wa) / 3, atol=1e-6)
    # Evenly spaced control points make the Bezier curve exactly the segment.
    flat_a, flat_b = flat_weights(a), flat_weights(b)
    for t in (0.25, 0.6):
        np.testing.assert_allclose(flat_weights(model, t), (1 - t) * flat_a + t * flat_b, atol=1e-5)
    assert evaluation.length_ratio(model) == pytest.approx(1.0, abs=1e-6)


def test_fit_leaves_endpoints_bit_identical_and_t0_t1_reproduce_the_trained_models():
    x, y = tiny_data()
    a, b = trained_cnn(x, 1), trained_cnn(x, 2)
    before_a, before_b = weights_by_path(a), weights_by_path(b)
    model = connect(a, b, ts.PolyChain(num_bends=1), seed=0)
    # Before training the moving statistics are model_a's: t = 0 is model_a exactly.
    model.set_alpha(0.0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), a.predict(x, verbose=0))
    bends = [copies[1].numpy() for layer in model.subspace_layers for copies in layer.subspace_weights.values()]

    model.compile(
        keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)

    for layer in model.subspace_layers:
        for copies, stock in zip(layer.subspace_weights.values(), a.get_layer(layer.name).trainable_weights):
            key = f"{layer.name}/{stock.name}"
            np.testing.assert_array_equal(copies[0].numpy(), before_a[key])
            np.testing.assert_array_equal(copies[-1].numpy(), before_b[key])
    after = [copies[1].numpy() for layer in model.subspace_layers for copies in layer.subspace_weights.values()]
    assert any(not np.array_equal(u, v) for u, v in zip(bends, after)), "fit did not train the bend"
    assert weights_by_path(a).keys() == before_a.keys()

    # t = 1 with model_b's own statistics is model_b, bit for bit.
    copy_batchnorm_statistics(b, model)
    model.set_alpha(1.0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), b.predict(x, verbose=0))
    # t = 0 with statistics recomputed on the same data equals model_a recomputed likewise.
    ts.recompute_batchnorm(model, x, alpha=0.0)
    ts.recompute_batchnorm(a, x)
    np.testing.assert_allclose(model.predict(x, verbose=0), a.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_connect_matches_by_structure_and_names_the_first_structural_difference():
    x, _ = tiny_data()
    a = small_cnn(num_classes=4)
    wider = small_cnn(num_classes=5)
    with pytest.raises(ValueError, match=r"at weighted layer \d+ \('head' vs 'head'\): units=5 vs 4") as error:
        connect(a, wider)
    assert "\n" not in str(error.value)
    # Other names, same structure: matched (Keras numbers names per process, so names never decide).
    renamed = keras.Sequential([keras.Input((8, 8, 1))] + [
        type(layer).from_config({**layer.get_config(), "name": layer.name + "_other"}) for layer in a.layers
    ])
    renamed.set_weights(a.get_weights())  # the batch-norm statistics too (the curve starts with model_a's)
    for variable in renamed.trainable_weights:
        variable.assign(variable + 1.0)
    model = connect(a, renamed)
    model.set_alpha(1.0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), renamed.predict(x, verbose=0))
    with pytest.raises(ValueError, match="`shape` must be a curve"):
        connect(a, small_cnn(), ts.Simplex(3))
    with pytest.raises(ValueError, match="`model_b` must be a trained keras.Model"):
        connect(a, x)


def test_connect_two_models_built_by_one_function_without_names():
    def build():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])

    a, b = build(), build()
    assert [layer.name for layer in a.layers] != [layer.name for layer in b.layers]
    model = connect(a, b, ts.Bezier(1), seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    for t, reference in ((0.0, a), (1.0, b)):
        model.set_alpha(t)
        np.testing.assert_array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0))


# -- curve metrics ------------------------------------------------------------------


def test_summarize_matches_numpy_trapezoid_min_max_and_arc_length_weighting():
    rng = np.random.default_rng(0)
    t = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(size=9)]))
    values = rng.normal(size=t.size)
    lengths = rng.uniform(0.1, 2.0, size=t.size - 1)
    plain = evaluation.summarize(t, values)
    assert plain["mean"] == pytest.approx(np.trapezoid(values, t))
    assert plain["int"] == plain["mean"]
    assert (plain["min"], plain["max"]) == (values.min(), values.max())
    weighted = evaluation.summarize(t, values, lengths)
    trapezoids = (values[1:] + values[:-1]) / 2
    assert weighted["int"] == pytest.approx(np.sum(trapezoids * lengths) / lengths.sum())
    with pytest.raises(ValueError, match="`lengths`"):
        evaluation.summarize(t, values, lengths[:-1])


def plane_curve(shape, bend_height):
    """A curve whose only weight is a 2-vector: ω_0 = (0, 0), bends (1, h), ω_m = (2, 0)."""
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, use_bias=False, name="d")])
    model = ts.convert(net, shape, init="point")
    copies = model.subspace_layers[0].subspace_weights["kernel"]
    values = [[0.0, 0.0]] + [[1.0, bend_height]] * (len(copies) - 2) + [[2.0, 0.0]]
    for copy, value in zip(copies, values):
        copy.assign([value])
    return model


def test_length_ratio_is_one_for_a_segment_and_matches_closed_forms_for_bent_curves():
    h = 1.5
    assert evaluation.length_ratio(plane_curve(ts.Line(), h)) == pytest.approx(1.0, abs=1e-12)
    # Quadratic Bezier: φ'(t) = 2·(1, h(1 − 2t)), length sqrt(1 + h²) + asinh(h)/h over segment 2.
    bezier = (math.sqrt(1 + h * h) + math.asinh(h) / h) / 2
    assert evaluation.length_ratio(plane_curve(ts.Bezier(1), h)) == pytest.approx(bezier, rel=1e-10)
    assert evaluation.length_ratio(plane_curve(ts.PolyChain(1), h)) == pytest.approx(
        math.sqrt(1 + h * h), rel=1e-12
    )
    assert evaluation.curve_length(plane_curve(ts.PolyChain(1), h)) == pytest.approx(
        2 * math.sqrt(1 + h * h), rel=1e-12
    )


def test_curve_rows_match_direct_evaluation_with_batchnorm_recomputed_per_t():
    x, y = tiny_data(n=48)
    a, b = trained_cnn(x, 1), trained_cnn(x, 2)
    model = connect(a, b, ts.PolyChain(num_bends=1), seed=0)
    bend = model.subspace_layers[0].subspace_weights["kernel"][1]
    bend.assign(bend + 0.3)  # move the bend off the segment
    statistics = [v.numpy() for v in model.network.get_layer("bn").non_trainable_weights]
    decay = 1e-2
    result = evaluation.curve(model, (x, y), (x[:32], y[:32]), points=5, weight_decay=decay)

    assert [row["t"] for row in result.rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert model.alpha == 0.5
    for variable, value in zip(model.network.get_layer("bn").non_trainable_weights, statistics):
        np.testing.assert_array_equal(variable.numpy(), value)

    def direct(weights, row):
        net = keras.models.clone_model(a)
        load_flat(net, weights)
        ts.recompute_batchnorm(net, x)
        nll = cross_entropy(net.predict(x, verbose=0), y)
        assert row["train_nll"] == pytest.approx(nll, rel=1e-5)
        assert row["train_loss"] == pytest.approx(nll + decay / 2 * np.sum(weights**2), rel=1e-5)
        test_logits = net.predict(x[:32], verbose=0)
        assert row["test_nll"] == pytest.approx(cross_entropy(test_logits, y[:32]), rel=1e-5)
        assert row["test_error"] == pytest.approx(np.mean(test_logits.argmax(1) != y[:32]))
        assert row["train_error"] == pytest.approx(np.mean(net.predict(x, verbose=0).argmax(1) != y))

    direct(flat_weights(model, 0.25), result.rows[1])
    direct((flat_weights(a) + flat_weights(b)) / 2, result.segment_rows[2])

    grid = [row["t"] for row in result.rows]
    for metric in evaluation.METRICS:
        values = [row[metric] for row in result.rows]
        summary = result.summary["curve"][metric]
        assert summary["mean"] == pytest.approx(np.trapezoid(values, grid))
        assert (summary["min"], summary["max"]) == (min(values), max(values))
        ends = [result.rows[0][metric], result.rows[-1][metric]]
        assert result.summary["single"][metric] == {"min": min(ends), "max": max(ends)}
    assert result.summary["segment"]["length_ratio"] == 1.0
    assert result.summary["curve"]["length_ratio"] == pytest.approx(evaluation.length_ratio(model))
    assert result.summary["curve"]["length_ratio"] > 1.0
    assert result.rows[0]["train_loss"] == result.segment_rows[0]["train_loss"]
    table = result.to_markdown().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| Single", "| Segment", "| PolyChain"]
    assert len({line.count("|") for line in table}) == 1


def test_curve_rejects_bad_arguments_in_one_line():
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="d")])
    model = ts.convert(net, ts.Bezier(1), init="point")
    data = (np.zeros((4, 2), "float32"), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match="`points` must be an integer >= 2"):
        evaluation.curve(model, data, data, points=1)
    with pytest.raises(ValueError, match="`weight_decay` must be a finite number >= 0 or None"):
        evaluation.curve(model, data, data, weight_decay=-1.0)
    with pytest.raises(ValueError, match="`model` must be on a curve"):
        evaluation.curve(ts.convert(net, ts.Simplex(3)), data, data)


# -- planes ---------------------------------------------------------------------------


def test_plane_basis_is_orthonormal_and_grid_losses_are_those_of_the_weights_there():
    x, y = tiny_data(n=32, input_shape=(4,))
    x = x.reshape(32, 4)

    def dense(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu", name="hidden"),
                                 keras.layers.Dense(4, name="head")])

    nets = [dense(seed) for seed in (1, 2, 3)]
    flats = [flat_weights(net) for net in nets]
    np.testing.assert_array_equal(flats[0], np.concatenate([v.numpy().ravel() for v in nets[0].trainable_weights]))
    result = plane(nets, nets[0], (x, y), grid=3, margin=0.1, weight_decay=0.0)

    np.testing.assert_allclose(result.basis @ result.basis.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(result.point_coordinates[0], [0.0, 0.0], atol=1e-12)
    assert result.point_coordinates[1][0] == pytest.approx(np.linalg.norm(flats[1] - flats[0]))
    assert result.point_coordinates[1][1] == pytest.approx(0.0, abs=1e-9)
    for coordinates, flat in zip(result.point_coordinates, flats):
        np.testing.assert_allclose(result.weights_at(*coordinates), flat, atol=1e-9)
        np.testing.assert_allclose(result.coordinates_of(flat), coordinates, atol=1e-9)
    assert result.labels == [net.name for net in nets]

    probe = keras.models.clone_model(nets[0])
    for j, i in [(0, 0), (2, 1)]:
        load_flat(probe, result.weights_at(result.x[i], result.y[j]))
        logits = probe.predict(x, verbose=0)
        assert result.loss[j, i] == pytest.approx(cross_entropy(logits, y), rel=1e-4)
        assert result.error[j, i] == pytest.approx(np.mean(logits.argmax(1) != y))


def test_plane_through_a_curve_and_its_bend_draws_a_png_with_the_curve_in_the_plane(tmp_path):
    x, y = tiny_data(n=32)
    a, b = trained_cnn(x, 1), trained_cnn(x, 2)
    model = connect(a, b, ts.Bezier(num_bends=1), seed=0)
    for layer in model.subspace_layers:
        for copies in layer.subspace_weights.values():
            copies[1].assign(copies[1] + 0.2)
    bend = flat_weights(model, point=1)
    path = tmp_path / "plots" / "plane.png"
    result = plane((0.0, bend, 1.0), model, (x, y), grid=3, path=path, curve_points=11, title="Bezier")
    assert result.path == os.fspath(path)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert result.labels == ["t = 0", "w2", "t = 1"]
    assert result.loss.shape == result.error.shape == (3, 3) and np.all(np.isfinite(result.loss))
    # A quadratic Bezier curve lies in the plane of its control points.
    np.testing.assert_allclose(result.curve_coordinates[0], result.point_coordinates[0], atol=1e-6)
    np.testing.assert_allclose(result.curve_coordinates[-1], result.point_coordinates[2], atol=1e-6)
    for t, coordinates in zip(result.curve_t[::5], result.curve_coordinates[::5]):
        np.testing.assert_allclose(result.weights_at(*coordinates), flat_weights(model, t), atol=1e-5)
    assert result.x[0] <= result.curve_coordinates[:, 0].min() and result.x[-1] >= result.curve_coordinates[:, 0].max()
    assert model.alpha == 0.5 and model.frozen_points == (0, 2)


def test_plane_rejects_bad_points_in_one_line():
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="d")])
    data = (np.zeros((4, 2), "float32"), np.zeros(4, "int64"))
    flat = flat_weights(net)
    with pytest.raises(ValueError, match="`points` must be a sequence of three weight points, got 2"):
        plane([flat, flat + 1], net, data)
    with pytest.raises(ValueError, match="collinear"):
        plane([flat, flat + 1, flat + 2], net, data)
    with pytest.raises(ValueError, match=r"`points\[1\]` must be a point α of `model`"):
        plane([flat, flat[:3], flat + 2], net, data)
    with pytest.raises(ValueError, match="`margin` must be a finite number >= 0"):
        plane([flat, flat + 1, flat * 2], net, data, margin=-1)
