"""SubspaceGeometry / geometry: pairwise L2 and cos² of the subspace's points."""

import itertools
import os

import keras
import numpy as np
import pytest
from conftest import small_cnn, tiny_data

import tfsubspace as ts
from tfsubspace.callbacks import SubspaceGeometry, geometry


def _endpoints(model):
    """[m, n] float64: each row ω_i, all non-normalization subspace weights concatenated."""
    rows = [[] for _ in range(model.subspace_shape.num_points)]
    for layer in model.subspace_layers:
        if layer.is_normalization:
            continue
        for copies in layer.subspace_weights.values():
            for row, copy in zip(rows, copies):
                row.append(np.asarray(copy.numpy(), np.float64).ravel())
    return np.stack([np.concatenate(row) for row in rows])


def _expected(model):
    points = _endpoints(model)
    stats = {}
    for j, k in itertools.combinations(range(len(points)), 2):
        a, b = points[j], points[k]
        stats[f"l2_{j}_{k}"] = np.linalg.norm(a - b)
        stats[f"cos2_{j}_{k}"] = np.dot(a, b) ** 2 / (np.dot(a, a) * np.dot(b, b))
    return stats


def _compiled(model):
    model.compile(
        keras.optimizers.SGD(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _batchnorm(model):
    (layer,) = [layer for layer in model.subspace_layers if layer.is_normalization]
    return layer


@pytest.mark.parametrize("shape", [ts.Line(), ts.Simplex(3), ts.Bezier(2)])
def test_matches_direct_numpy_computation(shape):
    model = ts.convert(small_cnn(), shape, seed=0)
    stats = geometry(model)
    expected = _expected(model)
    num_pairs = len(expected) // 2
    assert num_pairs == model.subspace_shape.num_points * (model.subspace_shape.num_points - 1) // 2
    for key, value in expected.items():
        np.testing.assert_allclose(stats[key], value, rtol=1e-9)
    l2 = [value for key, value in expected.items() if key.startswith("l2_")]
    cos2 = [value for key, value in expected.items() if key.startswith("cos2_")]
    np.testing.assert_allclose(stats["l2_mean"], np.mean(l2), rtol=1e-9)
    np.testing.assert_allclose(stats["cos2_mean"], np.mean(cos2), rtol=1e-9)
    assert all(isinstance(value, float) for value in stats.values())


def test_batchnorm_parameters_are_excluded():
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    before = geometry(model)
    bn = _batchnorm(model)
    for name in ("gamma", "beta"):
        for index, copy in enumerate(bn.subspace_weights[name]):
            copy.assign(np.full(copy.shape, 10.0 * (index + 1) + 3.0, "float32"))
    assert geometry(model) == before


def test_fit_logs_one_value_per_epoch():
    model = _compiled(ts.convert(small_cnn(), ts.Line(), seed=0))
    x, y = tiny_data()
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[SubspaceGeometry()])
    for key in ("l2_0_1", "cos2_0_1", "l2_mean", "cos2_mean"):
        assert len(history.history[key]) == 3, key
    # Last epoch's value is the geometry of the trained weights.
    np.testing.assert_allclose(history.history["l2_0_1"][-1], geometry(model)["l2_0_1"])
    # Training moved the endpoints, so the per-epoch distance changed.
    assert len(set(history.history["l2_0_1"])) > 1


def test_simplex_logs_every_pair_and_their_mean():
    model = _compiled(ts.convert(small_cnn(), ts.Simplex(3), seed=0))
    x, y = tiny_data()
    logs = model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[SubspaceGeometry()]).history
    pairs = ["0_1", "0_2", "1_2"]
    for metric in ("l2", "cos2"):
        per_pair = np.array([logs[f"{metric}_{pair}"] for pair in pairs])  # [pairs, epochs]
        np.testing.assert_allclose(logs[f"{metric}_mean"], per_pair.mean(axis=0), rtol=1e-9)
    pair_keys = {key for key in logs if key.startswith(("l2_", "cos2_")) and not key.endswith("_mean")}
    assert pair_keys == {f"{metric}_{pair}" for metric in ("l2", "cos2") for pair in pairs}


def test_pairs_mean_logs_only_the_means():
    model = _compiled(ts.convert(small_cnn(), ts.Simplex(3), seed=0))
    x, y = tiny_data()
    logs = model.fit(x, y, epochs=1, verbose=0, callbacks=[SubspaceGeometry(pairs="mean")]).history
    assert "l2_mean" in logs and "cos2_mean" in logs
    assert not [key for key in logs if key.startswith(("l2_0", "cos2_0"))]
    assert set(geometry(model, pairs="mean")) == {"l2_mean", "cos2_mean"}


def test_point_init_starts_at_one_point():
    model = ts.convert(small_cnn(), ts.Line(), seed=0, init="point")
    stats = geometry(model)
    assert stats["l2_0_1"] == pytest.approx(0.0, abs=1e-12)
    assert stats["cos2_0_1"] == pytest.approx(1.0, abs=1e-12)


def test_tensorboard_after_it_writes_events(tmp_path):
    model = _compiled(ts.convert(small_cnn(), ts.Line(), seed=0))
    x, y = tiny_data()
    log_dir = tmp_path / "tb"
    callbacks = [SubspaceGeometry(), keras.callbacks.TensorBoard(log_dir=str(log_dir))]
    model.fit(x, y, epochs=1, verbose=0, callbacks=callbacks)
    written = [name for _, _, files in os.walk(log_dir) for name in files]
    assert written


def test_non_subspace_model_raises_type_error():
    base = _compiled(small_cnn())
    x, y = tiny_data()
    with pytest.raises(TypeError, match="SubspaceModel"):
        base.fit(x, y, epochs=1, verbose=0, callbacks=[SubspaceGeometry()])
    with pytest.raises(TypeError, match="SubspaceModel"):
        geometry(base)


def test_invalid_pairs_argument():
    with pytest.raises(ValueError, match="pairs"):
        SubspaceGeometry(pairs="some")


def test_midpoint_evaluation_logs_center_scores_and_leaves_training_untouched():
    import tensorflow as tf

    from tfsubspace.callbacks import MidpointEvaluation

    x, y = tiny_data(n=64)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def build():
        model = ts.convert(small_cnn(), ts.Line(), seed=0)
        model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    watched, plain = build(), build()
    plain.set_weights([w.numpy() for w in watched.weights])
    watched.set_alpha(0.2)
    plain.set_alpha(0.2)
    history = watched.fit(data, epochs=2, verbose=0, callbacks=[MidpointEvaluation(data, data, every=2, batchnorm_steps=None)])
    plain.fit(data, epochs=2, verbose=0)
    assert len(history.history["val_midpoint_accuracy"]) == 1  # only after epoch 2
    assert watched.alpha == pytest.approx(0.2)
    # Moving statistics and weights restored: identical to training without the callback.
    for a, b in zip(watched.weights, plain.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The logged value is the center's accuracy after a full BN recompute there.
    ts.recompute_batchnorm(plain, data, alpha=0.5)
    expected = np.mean(plain.predict(x, verbose=0).argmax(1) == y)
    assert history.history["val_midpoint_accuracy"][0] == pytest.approx(expected)


def test_midpoint_evaluation_bad_arguments():
    from tfsubspace.callbacks import MidpointEvaluation

    with pytest.raises(ValueError, match="every"):
        MidpointEvaluation(None, None, every=0)
    with pytest.raises(ValueError, match="batchnorm_steps"):
        MidpointEvaluation(None, None, batchnorm_steps=0)
