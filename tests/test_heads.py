"""Logits or probabilities: every evaluation gives the same numbers for either head (issue 11).

The same network is built twice with identical weights: once ending in a
softmax (compiled with "sparse_categorical_crossentropy", as the README and
most Keras users do) and once ending in logits (compiled with
`from_logits=True`). Every evaluation function must score both alike, and
agree with a direct numpy computation.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from tfsubspace.experiments import common

NUM_CLASSES = 4


def mlp(activation=None, batchnorm=True):
    layers = [keras.Input((8,)), keras.layers.Dense(16, activation="relu")]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(NUM_CLASSES, activation=activation))
    return keras.Sequential(layers)


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(8, NUM_CLASSES)) + rng.normal(size=(n, NUM_CLASSES)), axis=1)
    return x, y


def twins(batchnorm=True):
    """(softmax-head net, logits-head net) with the same trained weights, each compiled its own way."""
    keras.utils.set_random_seed(3)
    x, y = data()
    soft = mlp("softmax", batchnorm)
    soft.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    soft.fit(x, y, batch_size=64, epochs=3, verbose=0)
    logits = mlp(None, batchnorm)
    logits.set_weights(soft.get_weights())
    logits.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return soft, logits


def direct_scores(probabilities, labels, num_bins=15):
    p = np.asarray(probabilities, np.float64)
    confidence, prediction = p.max(1), p.argmax(1)
    bins = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece = sum(
        abs(np.sum(prediction[bins == b] == labels[bins == b]) - np.sum(confidence[bins == b])) for b in range(num_bins)
    ) / len(labels)
    return {
        "accuracy": float(np.mean(prediction == labels)),
        "nll": float(-np.mean(np.log(p[np.arange(len(labels)), labels]))),
        "ece": float(ece),
        "brier": float(np.mean(np.sum((p - np.eye(p.shape[1])[labels]) ** 2, axis=1))),
    }


def test_softmax_head_sweep_ensemble_and_temperature_equal_the_direct_computation():
    """The reproduction of issue 11: on main the sweep double-softmaxed (NLL 1.12 for a true 0.73)."""
    soft, logits = twins(batchnorm=False)
    x, y = data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    truth = direct_scores(soft.predict(x, verbose=0), y)
    model = ts.convert(soft, ts.Line(), init="point", seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    row = ts.evaluate.sweep(model, dataset, batchnorm_data=dataset, alphas=[0.5]).rows[0]
    assert row["accuracy"] == pytest.approx(truth["accuracy"])
    assert row["nll"] == pytest.approx(truth["nll"], rel=1e-5)
    assert row["ece"] == pytest.approx(truth["ece"], abs=1e-5)
    scored = ts.evaluate.ensemble([soft], dataset)["ensemble"]
    assert scored["nll"] == pytest.approx(truth["nll"], rel=1e-5)
    assert scored["ece"] == pytest.approx(truth["ece"], abs=1e-5)
    assert ts.evaluate.fit_temperature(soft, dataset) == pytest.approx(
        ts.evaluate.fit_temperature(logits, dataset), rel=1e-5
    )


def test_the_head_is_read_from_the_argument_then_the_loss_then_the_activation():
    soft, logits = twins(batchnorm=False)
    assert not ts.evaluation.outputs_logits(soft) and ts.evaluation.outputs_logits(logits)
    assert ts.evaluation.outputs_logits(soft, from_logits=True)
    assert not ts.evaluation.outputs_logits(mlp("softmax"))  # not compiled: the activation decides
    assert ts.evaluation.outputs_logits(mlp(None))
    assert not ts.evaluation.outputs_logits(mlp("sigmoid"))
    functional_input = keras.Input((8,))
    nested = keras.Model(functional_input, keras.layers.Softmax()(mlp(None)(functional_input)))
    assert not ts.evaluation.outputs_logits(nested)
    assert not ts.evaluation.outputs_logits(ts.convert(mlp("softmax"), ts.Line()))
    # A loss saying "probabilities" on a logits head is caught, not scored silently wrong.
    wrong = mlp(None)
    wrong.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="outputs are not probabilities .* pass from_logits=True"):
        ts.evaluate.ensemble([wrong], data())


def scores_through_every_function(net, x, y):
    """{function name: scores dict} of one network through each evaluation function."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    loss = net.loss
    results = {}
    keras.utils.set_random_seed(7)  # the same random second endpoint for both twins
    line = ts.convert(net, ts.Line(), seed=0)
    line.compile("sgd", loss)
    sweep = ts.evaluate.sweep(line, dataset, batchnorm_data=dataset, alphas=[0.0, 0.3])
    results["sweep"] = sweep.rows[1]
    results["sweep_pair"] = {k[5:]: v for k, v in sweep.rows[1].items() if k.startswith("pair_") and k != "pair_tv"}
    results["ensemble_points"] = ts.evaluate.ensemble([0.2, 0.7], dataset, model=line, batchnorm_data=dataset)["ensemble"]
    results["ensemble_models"] = ts.evaluate.ensemble([net], dataset)["ensemble"]
    results["temperature"] = {"t": ts.evaluate.fit_temperature(net, dataset)}
    curve = ts.connect(net, net, ts.Bezier(1), seed=0)
    curve.compile("sgd", loss)
    rows = ts.evaluate.curve(curve, dataset, dataset, points=3, weight_decay=0.0, segment=False).rows
    results["curve"] = {"nll": rows[1]["test_nll"], "error": rows[1]["test_error"]}
    plane = ts.plane([net, line.bake(0.0), line.bake(1.0)], net, dataset, grid=2, margin=0.0)
    results["plane"] = {"nll": plane.nll.ravel().tolist(), "error": plane.error.ravel().tolist()}
    callback = ts.callbacks.MidpointEvaluation(dataset, dataset, batchnorm_steps=2)
    callback.set_model(line)
    logs = {}
    callback.on_epoch_end(0, logs)
    results["midpoint_callback"] = logs
    keras.utils.set_random_seed(8)
    simplex = ts.spro.SimplexModel(ts.convert(net, ts.Simplex(3), seed=0).network, seed=0)
    simplex.compile("sgd", loss)
    results["espro"] = ts.spro.ensemble([simplex], 2, dataset, batchnorm_data=dataset)["espro"]
    checkpoints = [net.get_weights(), [w * 0.9 for w in net.get_weights()]]
    results["checkpoints"] = ts.baselines.ensemble_checkpoints(
        checkpoints, dataset, model=net, batchnorm_data=dataset
    )["ensemble"]
    config = types.SimpleNamespace(eval=types.SimpleNamespace(batchnorm_steps=None))
    datasets = types.SimpleNamespace(train_eval=dataset, test=dataset)
    results["binary_test_scores"] = common.test_scores(_copy(net), datasets, config)[0]
    results["ood"] = ts.evaluate.ood(net, x, x[::-1] * 3.0)["entropy"]
    return results


def _copy(net):
    clone = keras.models.clone_model(net)
    clone.set_weights(net.get_weights())
    clone.compile("sgd", net.loss)
    return clone


def test_softmax_and_logits_heads_score_the_same_through_every_evaluation_function():
    soft, logits = twins()
    x, y = data()
    soft_results = scores_through_every_function(soft, x, y)
    logits_results = scores_through_every_function(logits, x, y)
    assert soft_results.keys() == logits_results.keys()
    for function, scored in soft_results.items():
        for name, value in scored.items():
            np.testing.assert_allclose(
                value, logits_results[function][name], rtol=1e-5, atol=1e-5, err_msg=f"{function}: {name}"
            )
    # ...and the numbers are the direct ones, not merely equal to each other.
    truth = direct_scores(tf.nn.softmax(logits.predict(x, verbose=0)).numpy(), y)
    recomputed = _copy(logits)
    ts.recompute_batchnorm(recomputed, tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    recomputed_truth = direct_scores(tf.nn.softmax(recomputed.predict(x, verbose=0)).numpy(), y)
    for name in ("accuracy", "nll", "ece", "brier"):
        assert soft_results["ensemble_models"][name] == pytest.approx(truth[name], abs=1e-5)
        assert soft_results["binary_test_scores"][name] == pytest.approx(recomputed_truth[name], abs=1e-5)


def test_fit_temperature_on_a_softmax_model_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(20000, 5)).astype("float32")
    true_temperature = 2.5
    p = tf.nn.softmax(logits / true_temperature).numpy().astype(np.float64)
    labels = np.array([rng.choice(5, p=row / row.sum()) for row in p])
    identity = keras.initializers.Identity()
    soft = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5, activation="softmax", use_bias=False,
                                                                   kernel_initializer=identity)])
    soft.compile(loss="sparse_categorical_crossentropy")
    fitted = ts.evaluate.fit_temperature(soft, (logits, labels))
    assert fitted == pytest.approx(true_temperature, rel=0.05)


@pytest.mark.parametrize("form", ["dataset_sparse", "dataset_one_hot", "numpy_tuple", "numpy_one_hot", "dict",
                                  "dataset_of_dicts", "column_labels"])
def test_every_data_form_and_label_format_gives_the_same_sweep(form):
    soft, _ = twins(batchnorm=False)
    x, y = data()
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[y]
    forms = {
        "dataset_sparse": tf.data.Dataset.from_tensor_slices((x, y)).batch(64),
        "dataset_one_hot": tf.data.Dataset.from_tensor_slices((x, one_hot)).batch(64),
        "numpy_tuple": (x, y),
        "numpy_one_hot": (x, one_hot),
        "dict": {"image": x, "label": y},
        "dataset_of_dicts": tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(50),
        "column_labels": (x, y.reshape(-1, 1).astype("float32")),
    }
    model = ts.convert(soft, ts.Line(), init="point", seed=0)
    row = ts.evaluate.sweep(model, forms[form], batchnorm_data=(x, y), alphas=[0.5], ensemble_pairs=False).rows[0]
    truth = direct_scores(soft.predict(x, verbose=0), y)
    for name in ("accuracy", "nll", "ece", "brier"):
        assert row[name] == pytest.approx(truth[name], abs=1e-5), name


def test_metrics_accept_one_hot_labels_and_match_sparse_ones():
    soft, _ = twins(batchnorm=False)
    x, y = data()
    p = soft.predict(x, verbose=0)
    for metric_class in (ts.metrics.NegativeLogLikelihood, ts.metrics.ExpectedCalibrationError, ts.metrics.BrierScore):
        sparse, one_hot = metric_class(), metric_class()
        sparse.update_state(y, p)
        one_hot.update_state(np.eye(NUM_CLASSES, dtype="float32")[y], p)
        assert float(one_hot.result()) == pytest.approx(float(sparse.result()), abs=1e-6)
        assert float(sparse.result()) == pytest.approx(direct_scores(p, y)[metric_class().name], abs=1e-5)


def test_binary_sigmoid_head_scores_as_two_classes():
    keras.utils.set_random_seed(0)
    x, y = data()
    y = (y > 1).astype("int64")
    net = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    p1 = net.predict(x, verbose=0)[:, 0].astype(np.float64)
    scored = ts.evaluate.ensemble([net], (x, y))["ensemble"]
    assert scored["nll"] == pytest.approx(-np.mean(np.where(y == 1, np.log(p1), np.log(1 - p1))), rel=1e-5)
    assert scored["accuracy"] == pytest.approx(np.mean((p1 > 0.5) == y))
