"""Streaming metrics equal a direct numpy computation, batch by batch and in compile()."""

import keras
import numpy as np
import pytest

from tfsubspace import metrics


# ---------------------------------------------------------------- numpy references


def np_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def np_ece(labels, probs, num_bins, weights=None):
    """Guo et al. 2017, bins (b/B, (b+1)/B] with 0 in bin 0, per-bin loop."""
    probs = np.asarray(probs, np.float32)
    labels = np.asarray(labels).reshape(-1)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Edges in float32 like the confidences, so "on an edge" means equal in float32.
    edges = (np.arange(num_bins + 1) / num_bins).astype(np.float32)
    total = weights.sum()
    ece = 0.0
    for b in range(num_bins):
        lower, upper = edges[b], edges[b + 1]
        in_bin = (conf > lower) & (conf <= upper)
        if b == 0:
            in_bin |= conf == 0.0
        n_b = weights[in_bin].sum()
        if n_b == 0:
            continue
        acc_b = (weights[in_bin] * correct[in_bin]).sum() / n_b
        conf_b = (weights[in_bin] * conf[in_bin].astype(np.float64)).sum() / n_b
        ece += n_b / total * abs(acc_b - conf_b)
    return ece


def np_nll(labels, probs, weights=None):
    labels = np.asarray(labels).reshape(-1)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    p = np.clip(np.asarray(probs, np.float64)[np.arange(len(labels)), labels], 1e-12, None)
    return float((weights * -np.log(p)).sum() / weights.sum())


def np_tv(p1, p2, weights=None):
    d = 0.5 * np.abs(np.asarray(p1, np.float64) - np.asarray(p2, np.float64)).sum(axis=1)
    weights = np.ones(len(d)) if weights is None else np.asarray(weights, np.float64)
    return float((weights * d).sum() / weights.sum())


def random_problem(n=97, c=5, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=(n, c))).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    return labels, logits, np_softmax(logits).astype(np.float32)


def value(metric):
    return float(metric.result())


# ------------------------------------------------------------------------- ECE


@pytest.mark.parametrize("num_bins", [1, 5, 15, 40])
def test_ece_matches_numpy_on_random_data(num_bins):
    labels, _, probs = random_problem(seed=num_bins)
    m = metrics.ExpectedCalibrationError(num_bins=num_bins)
    m.update_state(labels, probs)
    assert value(m) == pytest.approx(np_ece(labels, probs, num_bins), abs=1e-5)


def test_ece_with_empty_bins():
    # Confidences only in two of 10 bins; the other 8 must contribute 0.
    probs = np.array([[0.55, 0.45], [0.58, 0.42], [0.95, 0.05], [0.05, 0.95]], np.float32)
    labels = np.array([0, 1, 0, 0])
    m = metrics.ExpectedCalibrationError(num_bins=10)
    m.update_state(labels, probs)
    expected = np_ece(labels, probs, 10)
    # By hand: bin 5: acc 0.5, conf 0.565; bin 9: acc 0.5, conf 0.95.
    assert expected == pytest.approx(0.5 * 0.065 + 0.5 * 0.45, abs=1e-6)
    assert value(m) == pytest.approx(expected, abs=1e-6)
    assert int(np.count_nonzero(m.bin_counts.numpy())) == 2


def test_ece_confidence_on_bin_edges_goes_to_lower_bin():
    # With 5 bins, 0.2 goes to bin 0, 0.4 to bin 1, 0.6 to bin 2, 1.0 to bin 4.
    probs = np.array(
        [[0.2] * 5, [0.4, 0.3, 0.3, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]],
        np.float32,
    )
    labels = np.array([0, 1, 0, 0])
    m = metrics.ExpectedCalibrationError(num_bins=5)
    m.update_state(labels, probs)
    np.testing.assert_array_equal(m.bin_counts.numpy(), [1, 1, 1, 0, 1])
    assert value(m) == pytest.approx(np_ece(labels, probs, 5), abs=1e-6)


def test_ece_zero_confidence_goes_to_first_bin():
    # Not a probability vector (so it must be called one), but the metric must still bin conf == 0.
    m = metrics.ExpectedCalibrationError(num_bins=4, from_logits=False)
    m.update_state([0], np.zeros((1, 3), np.float32))
    np.testing.assert_array_equal(m.bin_counts.numpy(), [1, 0, 0, 0])
    assert value(m) == pytest.approx(1.0)


def test_ece_all_correct_and_all_wrong():
    _, _, probs = random_problem(seed=3)
    conf = probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    right = metrics.ExpectedCalibrationError(num_bins=10)
    right.update_state(predicted, probs)
    assert value(right) == pytest.approx(1.0 - conf.mean(), abs=1e-5)
    wrong = metrics.ExpectedCalibrationError(num_bins=10)
    wrong.update_state((predicted + 1) % probs.shape[1], probs)
    assert value(wrong) == pytest.approx(conf.mean(), abs=1e-5)


def test_ece_logits_and_probabilities_agree():
    labels, logits, probs = random_problem(seed=4)
    from_probs = metrics.ExpectedCalibrationError(num_bins=10)
    from_probs.update_state(labels, probs)
    from_logits = metrics.ExpectedCalibrationError(num_bins=10, from_logits=True)
    from_logits.update_state(labels, logits)
    assert value(from_logits) == pytest.approx(value(from_probs), abs=1e-5)


def test_ece_accepts_column_labels():
    labels, _, probs = random_problem(seed=5)
    m = metrics.ExpectedCalibrationError(num_bins=7)
    m.update_state(labels[:, None], probs)
    assert value(m) == pytest.approx(np_ece(labels, probs, 7), abs=1e-5)


# ----------------------------------------------- shared behaviour of all three metrics


def make(kind, from_logits=False):
    return {
        "ece": lambda: metrics.ExpectedCalibrationError(num_bins=8, from_logits=from_logits),
        "nll": lambda: metrics.NegativeLogLikelihood(from_logits=from_logits),
        "tv": lambda: metrics.TotalVariationDistance(from_logits=from_logits),
    }[kind]()


def problem_for(kind, seed=0, n=97):
    """(first, second, numpy reference with optional weights) for one metric."""
    labels, logits, probs = random_problem(n=n, seed=seed)
    if kind == "ece":
        return labels, probs, lambda w=None: np_ece(labels, probs, 8, w)
    if kind == "nll":
        return labels, probs, lambda w=None: np_nll(labels, probs, w)
    _, _, other = random_problem(n=n, seed=seed + 100)
    return probs, other, lambda w=None: np_tv(probs, other, w)


KINDS = ["ece", "nll", "tv"]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_numpy(kind):
    first, second, reference = problem_for(kind, seed=10)
    m = make(kind)
    m.update_state(first, second)
    assert value(m) == pytest.approx(reference(), abs=1e-5)


@pytest.mark.parametrize("kind", ["nll", "tv"])
def test_logits_and_probabilities_agree(kind):
    labels, logits, probs = random_problem(seed=11)
    _, other_logits, other_probs = random_problem(seed=12)
    first_l, first_p = (labels, labels) if kind == "nll" else (other_logits, other_probs)
    m_p, m_l = make(kind), make(kind, from_logits=True)
    m_p.update_state(first_p, probs)
    m_l.update_state(first_l, logits)
    assert value(m_l) == pytest.approx(value(m_p), rel=1e-4, abs=1e-5)


def test_nll_clips_zero_probability_and_logits_are_stable():
    m = metrics.NegativeLogLikelihood()
    m.update_state([1], np.array([[1.0, 0.0]], np.float32))
    assert value(m) == pytest.approx(-np.log(1e-12), rel=1e-5)
    big = metrics.NegativeLogLikelihood(from_logits=True)
    big.update_state([1], np.array([[500.0, 0.0]], np.float32))
    assert value(big) == pytest.approx(500.0, rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_three_uneven_batches_equal_one_shot(kind):
    first, second, reference = problem_for(kind, seed=20)
    one_shot = make(kind)
    one_shot.update_state(first, second)
    streamed = make(kind)
    for lo, hi in [(0, 5), (5, 61), (61, len(first))]:
        streamed.update_state(first[lo:hi], second[lo:hi])
    assert value(streamed) == pytest.approx(value(one_shot), abs=1e-6)
    assert value(streamed) == pytest.approx(reference(), abs=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_weights_equal_repeating_examples(kind):
    first, second, reference = problem_for(kind, seed=30, n=40)
    counts = np.random.default_rng(0).integers(0, 4, size=len(first))  # includes 0
    weighted = make(kind)
    weighted.update_state(first, second, sample_weight=counts.astype(np.float32))
    repeated = make(kind)
    repeated.update_state(np.repeat(first, counts, axis=0), np.repeat(second, counts, axis=0))
    assert value(weighted) == pytest.approx(value(repeated), abs=1e-5)
    assert value(weighted) == pytest.approx(reference(counts), abs=1e-5)
    column = make(kind)  # [N, 1] weights, as Keras may pass them
    column.update_state(first, second, sample_weight=counts[:, None].astype(np.float32))
    assert value(column) == pytest.approx(value(weighted), abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_reset_state_clears(kind):
    first, second, _ = problem_for(kind, seed=40)
    m = make(kind)
    m.update_state(first, second)
    assert value(m) > 0
    m.reset_state()
    assert all(not np.any(v.numpy()) for v in m.variables)
    assert value(m) == 0.0
    other_first, other_second, reference = problem_for(kind, seed=41)
    m.update_state(other_first, other_second)
    assert value(m) == pytest.approx(reference(), abs=1e-5)


@pytest.mark.parametrize(
    "metric",
    [
        metrics.ExpectedCalibrationError(num_bins=7, from_logits=True, name="my_ece"),
        metrics.NegativeLogLikelihood(from_logits=True, name="my_nll"),
        metrics.TotalVariationDistance(from_logits=True, name="my_tv"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_config_round_trip(metric):
    config = metric.get_config()
    clone = type(metric).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == config


def test_bad_arguments_raise():
    for bad in [0, -3, 2.5, "15", True, None]:
        with pytest.raises(ValueError, match="num_bins"):
            metrics.ExpectedCalibrationError(num_bins=bad)
    for cls in [metrics.ExpectedCalibrationError, metrics.NegativeLogLikelihood, metrics.TotalVariationDistance]:
        with pytest.raises(ValueError, match="from_logits"):
            cls(from_logits="yes")
    with pytest.raises(ValueError, match="same shape"):
        metrics.TotalVariationDistance().update_state(np.ones((3, 2)) / 2, np.ones((1, 2)) / 2)
    metrics.ExpectedCalibrationError(num_bins=np.int64(3))  # numpy ints are fine


# --------------------------------------------------------------------- in compile()


def test_in_model_compile_and_evaluate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=50)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            metrics.ExpectedCalibrationError(num_bins=10, from_logits=True),
            metrics.NegativeLogLikelihood(from_logits=True),
        ],
    )
    # batch_size 16 -> uneven batches 16, 16, 16, 2 accumulated by evaluate().
    results = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    probs = np_softmax(model.predict(x, verbose=0).astype(np.float64)).astype(np.float32)
    assert results["ece"] == pytest.approx(np_ece(y, probs, 10), abs=1e-5)
    assert results["nll"] == pytest.approx(np_nll(y, probs), abs=1e-5)
    assert results["nll"] == pytest.approx(results["loss"], abs=1e-5)


def test_tv_in_model_compile_against_fixed_targets():
    # y_true plays p1: distance of the model's softmax to fixed distributions.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    targets = np_softmax(rng.normal(size=(30, 3))).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", metrics=[metrics.TotalVariationDistance()])
    results = model.evaluate(x, targets, batch_size=8, verbose=0, return_dict=True)
    assert results["tv_distance"] == pytest.approx(np_tv(targets, model.predict(x, verbose=0)), abs=1e-5)
