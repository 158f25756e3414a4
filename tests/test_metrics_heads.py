"""ts.metrics read logits or probabilities from the model, by the rule of evaluation.heads (issue 11).

The same network (same weights) ends once in a `Softmax` layer and once in
logits; compiled with default `ts.metrics`, both must give the same NLL, ECE
and Brier score, equal to a direct numpy computation. A metric never told the
head decides from the values, so logits are never scored as probabilities.
"""

import keras
import numpy as np
import pytest

import tfsubspace as ts
from tfsubspace import metrics

NUM_CLASSES = 4
NUM_BINS = 10


def data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=n)
    return x, y


def network(softmax, units=NUM_CLASSES):
    """Dense logits, then (when `softmax`) a separate Softmax layer; weights fixed by the seed."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(units, name="head")(keras.layers.Dense(8, activation="relu")(inputs))
    if softmax:
        outputs = keras.layers.Softmax()(outputs) if units > 1 else keras.layers.Activation("sigmoid")(outputs)
    return keras.Model(inputs, outputs)


LOSS = {
    True: keras.losses.SparseCategoricalCrossentropy(from_logits=False),  # softmax head
    False: keras.losses.SparseCategoricalCrossentropy(from_logits=True),  # logits head
}


def default_metrics():
    return [
        metrics.ExpectedCalibrationError(num_bins=NUM_BINS),
        metrics.NegativeLogLikelihood(),
        metrics.BrierScore(),
    ]


def direct(probabilities, labels):
    """NLL, ECE (bins (b/B, (b+1)/B]) and Brier score in float64 numpy."""
    p = np.asarray(probabilities, np.float64)
    confidence, correct = p.max(1), (p.argmax(1) == labels)
    bins = np.clip(np.ceil(confidence * NUM_BINS).astype(int) - 1, 0, NUM_BINS - 1)
    ece = sum(abs(np.sum(correct[bins == b]) - np.sum(confidence[bins == b])) for b in range(NUM_BINS))
    return {
        "nll": float(-np.mean(np.log(p[np.arange(len(labels)), labels]))),
        "ece": float(ece / len(labels)),
        "brier": float(np.mean(np.sum((p - np.eye(p.shape[1])[labels]) ** 2, axis=1))),
    }


def true_probabilities(x):
    logits = network(softmax=False).predict(x, verbose=0).astype(np.float64)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def scores(model, x, y):
    results = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    return {name: results[name] for name in ("nll", "ece", "brier")}


def assert_close(got, expected):
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-5), name


# ------------------------------------------------------------------ compiled into a model


def test_subspace_model_compile_reads_the_head_so_softmax_and_logits_twins_score_alike():
    x, y = data()
    truth = direct(true_probabilities(x), y)
    for softmax in (True, False):
        model = ts.convert(network(softmax), ts.Line(), init="point", seed=0)
        compiled = default_metrics()
        model.compile("sgd", LOSS[softmax], metrics=compiled)
        assert [m.from_logits for m in compiled] == [not softmax] * 3
        assert_close(scores(model, x, y), truth)


def test_subspace_model_compile_reads_loss_names_weighted_and_nested_metrics():
    x, y = data()
    model = ts.convert(network(softmax=True), ts.Line(), init="point", seed=0)
    ece, nll, brier = default_metrics()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[ece, ["accuracy", nll]],
                  weighted_metrics=[brier])
    assert (ece.from_logits, nll.from_logits, brier.from_logits) == (False, False, False)
    assert_close(scores(model, x, y), direct(true_probabilities(x), y))


def test_plain_keras_model_reads_the_head_through_for_model():
    x, y = data()
    truth = direct(true_probabilities(x), y)
    for softmax in (True, False):
        inside = network(softmax)  # bound inside compile, with the loss being compiled
        bound = default_metrics()
        inside.compile("sgd", LOSS[softmax], metrics=metrics.for_model(inside, bound, loss=LOSS[softmax]))
        assert [m.from_logits for m in bound] == [not softmax] * 3
        assert_close(scores(inside, x, y), truth)
        after = network(softmax)  # bound after compile, from model.loss
        bound = default_metrics()
        after.compile("sgd", LOSS[softmax], metrics=bound)
        assert metrics.for_model(after, bound) is bound
        assert [m.from_logits for m in bound] == [not softmax] * 3
        assert_close(scores(after, x, y), truth)


def test_for_model_walks_dicts_and_leaves_explicit_values_and_other_metrics_alone():
    model = network(softmax=False)
    free, explicit = metrics.NegativeLogLikelihood(), metrics.BrierScore(from_logits=False)
    keras_metric = keras.metrics.SparseCategoricalAccuracy()
    structure = {"out": [free, ("accuracy", keras_metric)], "other": explicit, "none": None}
    assert metrics.for_model(model, structure) is structure
    assert free.from_logits is True and explicit.from_logits is False
    assert metrics.for_model(model, None) is None


def test_a_metric_reused_in_a_second_model_reads_that_models_head():
    # SPRO's growth compiles the same metric objects into every new vertex model.
    nll = metrics.NegativeLogLikelihood()
    metrics.for_model(network(softmax=False), [nll])
    assert nll.from_logits is True
    metrics.for_model(network(softmax=True), [nll])
    assert nll.from_logits is False


def test_binary_one_column_heads_score_as_two_classes_for_sigmoid_and_logit():
    x, y = data()
    y = y % 2
    z = network(softmax=False, units=1).predict(x, verbose=0)[:, 0].astype(np.float64)
    p1 = 1.0 / (1.0 + np.exp(-z))
    truth = direct(np.stack([1.0 - p1, p1], axis=1), y)
    losses = {True: "binary_crossentropy", False: keras.losses.BinaryCrossentropy(from_logits=True)}
    for sigmoid in (True, False):
        model = ts.convert(network(sigmoid, units=1), ts.Line(), init="point", seed=0)
        model.compile("sgd", losses[sigmoid], metrics=default_metrics())
        assert_close(scores(model, x, y.astype("float32")), truth)
        unbound = network(sigmoid, units=1)  # not told: decided from the values
        unbound.compile("sgd", losses[sigmoid], metrics=default_metrics())
        assert_close(scores(unbound, x, y.astype("float32")), truth)


# ------------------------------------------------------------------ never told the head


def test_unbound_metric_in_a_plain_model_scores_logits_as_logits_inside_evaluate():
    x, y = data()
    model = network(softmax=False)
    unbound = default_metrics()
    model.compile("sgd", LOSS[False], metrics=unbound)  # a plain model: nobody tells the metrics
    assert_close(scores(model, x, y), direct(true_probabilities(x), y))
    assert [m.from_logits for m in unbound] == [None] * 3


@pytest.mark.parametrize("metric_class", [metrics.NegativeLogLikelihood, metrics.BrierScore,
                                          metrics.ExpectedCalibrationError])
def test_unbound_metric_decides_from_the_values_batch_by_batch(metric_class):
    x, y = data()
    logits = network(softmax=False).predict(x, verbose=0)
    probabilities = true_probabilities(x).astype("float32")
    told = metric_class(from_logits=True)
    told.update_state(y, logits)
    from_logits, from_probabilities = metric_class(), metric_class()
    for lo, hi in [(0, 30), (30, len(y))]:
        from_logits.update_state(y[lo:hi], logits[lo:hi])
        from_probabilities.update_state(y[lo:hi], probabilities[lo:hi])
    assert float(from_logits.result()) == pytest.approx(float(told.result()), abs=1e-5)
    assert float(from_probabilities.result()) == pytest.approx(float(told.result()), abs=1e-5)


def test_unbound_total_variation_decides_each_argument_from_its_values():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 3)).astype("float32"), rng.normal(size=(20, 3)).astype("float32")
    pb = np.exp(b) / np.exp(b).sum(1, keepdims=True)
    told = metrics.TotalVariationDistance(from_logits=True)
    told.update_state(a, b)
    mixed = metrics.TotalVariationDistance()
    mixed.update_state(a, pb)
    assert float(mixed.result()) == pytest.approx(float(told.result()), abs=1e-5)


# ------------------------------------------------------------------ explicit values, config, errors


def test_explicit_from_logits_wins_over_the_model_and_the_values():
    x, y = data()
    model = ts.convert(network(softmax=False), ts.Line(), init="point", seed=0)
    as_probabilities = metrics.BrierScore(from_logits=False)
    model.compile("sgd", LOSS[False], metrics=[as_probabilities])
    assert as_probabilities.from_logits is False
    logits = network(softmax=False).predict(x, verbose=0).astype(np.float64)
    raw = float(np.mean(np.sum((logits - np.eye(NUM_CLASSES)[y]) ** 2, axis=1)))
    assert model.evaluate(x, y, verbose=0, return_dict=True)["brier"] == pytest.approx(raw, rel=1e-5)
    softmaxed = metrics.NegativeLogLikelihood(from_logits=True)  # probabilities given, softmax applied anyway
    probabilities = true_probabilities(x)
    softmaxed.update_state(y, probabilities)
    twice = np.exp(probabilities) / np.exp(probabilities).sum(1, keepdims=True)
    assert float(softmaxed.result()) == pytest.approx(direct(twice, y)["nll"], abs=1e-5)


@pytest.mark.parametrize("metric_class", [metrics.ExpectedCalibrationError, metrics.NegativeLogLikelihood,
                                          metrics.BrierScore, metrics.TotalVariationDistance])
def test_config_round_trip_keeps_none_until_read_then_saves_the_value_read(metric_class):
    unread = metric_class()
    assert unread.get_config()["from_logits"] is None
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(unread))
    assert type(restored) is metric_class and restored.get_config() == unread.get_config()
    metrics.for_model(network(softmax=False), unread)
    assert unread.get_config()["from_logits"] is True
    clone = metric_class.from_config(unread.get_config())
    assert clone.from_logits is True and clone.get_config() == unread.get_config()


def test_saved_subspace_model_restores_the_compiled_metrics_head(tmp_path):
    x, y = data()
    model = ts.convert(network(softmax=False), ts.Line(), init="point", seed=0)
    model.compile("sgd", LOSS[False], metrics=default_metrics())
    before = scores(model, x, y)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = ts.load_model(path)
    saved = restored.get_compile_config()["metrics"]
    assert [m["config"]["from_logits"] for m in saved] == [True] * 3  # the value read, saved
    assert_close(scores(restored, x, y), before)


@pytest.mark.parametrize("bad", ["yes", "True", 1, 0, 0.0, [True]])
def test_bad_from_logits_is_one_line_naming_it(bad):
    for metric_class in (metrics.ExpectedCalibrationError, metrics.NegativeLogLikelihood,
                         metrics.BrierScore, metrics.TotalVariationDistance):
        with pytest.raises(ValueError, match="`from_logits` must be None") as caught:
            metric_class(from_logits=bad)
        assert "\n" not in str(caught.value)
