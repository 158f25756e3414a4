"""ts.evaluate.sweep: per-α metrics with BN recompute, pair ensembles, reuse of predictions."""

import importlib
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from tfsubspace import evaluate
from conftest import small_cnn, tiny_data


@pytest.fixture(scope="module")
def line_model():
    keras.utils.set_random_seed(0)
    x, y = tiny_data(n=96)
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    return model, data, x, y


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def direct_probabilities(model, x, alpha):
    ts.recompute_batchnorm(model, x, alpha=alpha, batch_size=32)
    return softmax(model.predict(x, verbose=0).astype(np.float64))


def test_rows_equal_direct_computation_at_each_alpha(line_model):
    model, data, x, y = line_model
    result = ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.0, 0.3, 0.7, 1.0])
    for row in result.rows:
        own = direct_probabilities(model, x, row["alpha"])
        partner = direct_probabilities(model, x, 1.0 - row["alpha"])
        assert row["accuracy"] == pytest.approx(np.mean(own.argmax(1) == y))
        assert row["nll"] == pytest.approx(-np.mean(np.log(own[np.arange(len(y)), y])), rel=1e-4)
        pair = (own + partner) / 2
        assert row["pair_accuracy"] == pytest.approx(np.mean(pair.argmax(1) == y))
        assert row["pair_nll"] == pytest.approx(-np.mean(np.log(pair[np.arange(len(y)), y])), rel=1e-4)
        assert row["pair_tv"] == pytest.approx(0.5 * np.abs(own - partner).sum(1).mean(), abs=1e-5)
    assert result.rows[0]["pair_tv"] > 0


def test_each_alpha_is_predicted_once(line_model, monkeypatch):
    model, data, _, _ = line_model
    calls = []
    sweep_module = importlib.import_module("tfsubspace.evaluation.sweep")
    original = sweep_module.predict_at
    monkeypatch.setattr(sweep_module, "predict_at", lambda *a, **k: calls.append(1) or original(*a, **k))
    result = ts.evaluate.sweep(model, data, batchnorm_data=data)
    assert len(result.rows) == 21 and [r["alpha"] for r in result.rows][:3] == [0.0, 0.05, 0.1]
    assert len(calls) == 21


def test_sweep_and_ensemble_leave_the_model_exactly_as_they_found_it(line_model):
    model, data, x, _ = line_model
    ts.recompute_batchnorm(model, data, alpha=0.4)
    before = model.predict(x, verbose=0)
    statistics = [v.numpy().copy() for v in model.non_trainable_weights]
    ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.0, 1.0])
    ts.evaluate.ensemble([0.1, 0.9], data, model=model, batchnorm_data=data)
    assert model.alpha == pytest.approx(0.4)
    for value, variable in zip(statistics, model.non_trainable_weights):
        np.testing.assert_array_equal(variable.numpy(), value)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    model.set_alpha(0.5)


def test_simplex_default_points_are_center_vertices_and_random_without_pairs():
    x, y = tiny_data(n=32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = ts.convert(small_cnn(), ts.Simplex(3), seed=0)
    result = ts.evaluate.sweep(model, data, batchnorm_data=data)
    alphas = [row["alpha"] for row in result.rows]
    assert alphas[0] == pytest.approx([1 / 3] * 3)
    assert alphas[1:4] == np.eye(3).tolist()
    assert len(alphas) == 9 and all(abs(sum(a) - 1) < 1e-6 for a in alphas)
    assert "pair_accuracy" not in result.rows[0]
    assert "| alpha |" in result.to_markdown()


def test_bad_alpha_is_refused_before_any_work(line_model):
    model, data, _, _ = line_model
    with pytest.raises(ValueError, match="alpha"):
        ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.5, 1.5])


def test_ensemble_of_points_equals_mean_of_direct_probabilities(line_model):
    model, data, x, y = line_model
    points = ts.evaluate.random_points(model, 3, seed=1)
    result = ts.evaluate.ensemble(points, data, model=model, batchnorm_data=data)
    member_probabilities = [direct_probabilities(model, x, a) for a in points]
    mean = np.mean(member_probabilities, axis=0)
    assert result["ensemble"]["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y))
    assert result["ensemble"]["nll"] == pytest.approx(-np.mean(np.log(mean[np.arange(len(y)), y])), rel=1e-4)
    for member, p in zip(result["members"], member_probabilities):
        assert member["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    model.set_alpha(0.5)


def test_ensemble_of_keras_models(line_model):
    model, data, x, y = line_model
    plains = [model.bake(0.0), model.bake(1.0)]
    result = ts.evaluate.ensemble(plains, data)
    mean = np.mean([softmax(p.predict(x, verbose=0).astype(np.float64)) for p in plains], axis=0)
    assert result["ensemble"]["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y))
    assert len(result["members"]) == 2


def test_random_points_follow_the_training_distribution_and_seed():
    model = ts.convert(small_cnn(), ts.Simplex(4), seed=0)
    points = ts.evaluate.random_points(model, 2000, seed=3)
    assert np.allclose(np.sum(points, axis=1), 1) and np.min(points) >= 0
    assert np.allclose(np.mean(points, axis=0), 0.25, atol=0.02)
    assert points == ts.evaluate.random_points(model, 2000, seed=3)
    assert points != ts.evaluate.random_points(model, 2000, seed=4)
    with pytest.raises(ValueError, match="k"):
        ts.evaluate.random_points(model, 0)


def test_ensemble_bad_inputs(line_model):
    model, data, _, _ = line_model
    with pytest.raises(ValueError, match="members"):
        ts.evaluate.ensemble([], data)
    with pytest.raises(ValueError, match="batchnorm_data"):
        ts.evaluate.ensemble([0.2], data, model=model)
    with pytest.raises(ValueError, match="members"):
        ts.evaluate.ensemble([1.5], data, model=model, batchnorm_data=data)


def identity_model(num_classes):
    return keras.Sequential([keras.Input((num_classes,)), keras.layers.Identity()])


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20000, 5)).astype("float32")
    true_temperature = 2.5
    p = softmax(logits.astype(np.float64) / true_temperature)
    labels = np.array([rng.choice(5, p=row) for row in p])
    data = tf.data.Dataset.from_tensor_slices((logits, labels)).batch(5000)
    fitted = ts.evaluate.fit_temperature(identity_model(5), data)
    assert fitted == pytest.approx(true_temperature, rel=0.05)

    def nll(t):
        q = softmax(logits.astype(np.float64) / t)
        return -np.mean(np.log(q[np.arange(len(labels)), labels]))

    assert nll(fitted) <= min(nll(1.0), nll(fitted * 1.2), nll(fitted / 1.2))
    scored = ts.evaluate.ensemble([identity_model(5)], data, temperature=fitted)
    assert scored["ensemble"]["nll"] == pytest.approx(nll(fitted), rel=1e-4)


def test_sweep_with_temperature_divides_the_logits(line_model):
    model, data, x, y = line_model
    row = ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.3], ensemble_pairs=False, temperature=2.0).rows[0]
    ts.recompute_batchnorm(model, x, alpha=0.3, batch_size=32)
    p = softmax(model.predict(x, verbose=0).astype(np.float64) / 2.0)
    assert row["nll"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])), rel=1e-4)
    model.set_alpha(0.5)
    with pytest.raises(ValueError, match="temperature"):
        ts.evaluate.sweep(model, data, batchnorm_data=data, temperature=0.0)
