"""The evaluation core: the point a model is at, results, progress, OOD scores, nested planes."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn, tiny_data

import tfsubspace as ts
from tfsubspace.evaluation.batchnorm import preserved_point
from tfsubspace.evaluation.ood import aupr, auroc


def bn_line(seed=0):
    keras.utils.set_random_seed(seed)
    return ts.convert(small_cnn(), ts.Line(), seed=seed)


# -- the point a model is at --------------------------------------------------------


def test_set_point_keeps_alpha_predict_bake_and_the_layers_in_agreement():
    model = bn_line()
    x, _ = tiny_data(n=8)
    model.set_point(alpha=0.3)
    assert model.alpha == pytest.approx(0.3)
    for layer in model.subspace_layers:
        np.testing.assert_allclose(layer.coefficients.numpy(), [0.7, 0.3], atol=1e-7)
    np.testing.assert_allclose(model.predict(x, verbose=0), model.bake()(x), atol=1e-5)
    # Raw coefficients (off the segment): predict follows, alpha says there is no α.
    model.set_point(coefficients=[1.5, -0.5])
    assert model.alpha is None
    np.testing.assert_allclose(model.alpha_coefficients.numpy(), [1.5, -0.5])
    for layer in model.subspace_layers:
        np.testing.assert_allclose(layer.coefficients.numpy(), [1.5, -0.5])
    expected = model.network(x, training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


def test_preserved_point_restores_raw_coefficients_alpha_and_statistics():
    model = bn_line()
    x, y = tiny_data(n=32)
    model.set_point(coefficients=[2.0, -1.0])
    bn = model.network.get_layer("bn").layer  # the stock BN inside its Subspace wrapper
    before = bn.moving_mean.numpy().copy()
    with preserved_point(model):
        ts.evaluate.sweep(model, (x, y), batchnorm_data=(x, y), alphas=[0.0, 1.0])
        model.set_point(alpha=0.5)
    assert model.alpha is None
    np.testing.assert_allclose(model.alpha_coefficients.numpy(), [2.0, -1.0])
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    model.set_point(alpha=0.25)
    ts.evaluate.ensemble([0.0, 1.0], (x, y), model=model, batchnorm_data=(x, y))
    assert model.alpha == 0.25
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_a_failed_batchnorm_recompute_leaves_the_point_and_statistics_untouched():
    model = bn_line()
    x, _ = tiny_data(n=32)
    model.set_alpha(0.8)
    bn = model.network.get_layer("bn").layer  # the stock BN inside its Subspace wrapper
    mean, variance = bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()
    poisoned = x.copy()
    poisoned[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite inputs"):
        ts.recompute_batchnorm(model, poisoned, alpha=0.1, batch_size=8)
    with pytest.raises(ValueError, match="generator"):
        ts.recompute_batchnorm(model, (row for row in x), alpha=0.1)
    assert model.alpha == pytest.approx(0.8)
    np.testing.assert_allclose(model.subspace_layers[0].coefficients.numpy(), [0.2, 0.8], atol=1e-7)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(bn.moving_variance.numpy(), variance)


def test_recompute_batchnorm_takes_steps_of_an_infinite_dataset_and_dict_batches():
    x, y = tiny_data(n=32)
    net = small_cnn()
    ts.recompute_batchnorm(net, tf.data.Dataset.from_tensor_slices(x).batch(8).repeat(), steps=4)
    reference = small_cnn()
    reference.set_weights(net.get_weights())
    ts.recompute_batchnorm(reference, x, batch_size=8)
    np.testing.assert_allclose(net.get_layer("bn").moving_mean, reference.get_layer("bn").moving_mean, atol=1e-6)
    labelled = tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(8)
    ts.recompute_batchnorm(net, labelled)
    np.testing.assert_allclose(net.get_layer("bn").moving_mean, reference.get_layer("bn").moving_mean, atol=1e-6)


# -- results and progress -------------------------------------------------------------


def test_results_are_iterable_rows_with_markdown():
    model = bn_line()
    x, y = tiny_data(n=32)
    sweep = ts.evaluate.sweep(model, (x, y), batchnorm_data=(x, y), alphas=[0.0, 0.5, 1.0])
    assert len(sweep) == 3 and [row["alpha"] for row in sweep] == [0.0, 0.5, 1.0] and sweep[1] is sweep.rows[1]
    table = sweep.to_markdown().splitlines()
    assert len(table) == 5 and table[0].startswith("| alpha | accuracy | nll | ece | brier |")
    ensemble = ts.evaluate.ensemble([0.0, 1.0], (x, y), model=model, batchnorm_data=(x, y))
    assert [row["member"] for row in ensemble] == ["ensemble", 0.0, 1.0]
    assert ensemble["members"] == ensemble.rows[1:] and "ensemble" in ensemble.to_dict()
    assert ensemble.to_markdown().count("\n") == 4 and ensemble.to_markdown().endswith("| — |")


def test_verbose_1_shows_a_keras_progress_bar_and_the_default_stays_quiet_in_tests(capsys):
    model = bn_line()
    x, y = tiny_data(n=32)
    ts.evaluate.sweep(model, (x, y), batchnorm_data=(x, y), alphas=[0.0, 1.0])
    assert capsys.readouterr().out == ""
    ts.evaluate.sweep(model, (x, y), batchnorm_data=(x, y), alphas=[0.0, 1.0], verbose=1)
    out = capsys.readouterr().out
    assert "sweep over 2 points" in out and "2/2" in out
    ts.recompute_batchnorm(model, x, batch_size=8, verbose=1)
    assert "4/4" in capsys.readouterr().out


# -- ensembles ------------------------------------------------------------------------


def test_ensemble_disagreement_is_the_mean_pairwise_top1_disagreement():
    nets = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        nets.append(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.arange(64) % 3
    result = ts.evaluate.ensemble(nets, (x, y))["ensemble"]
    predictions = [net.predict(x, verbose=0).argmax(1) for net in nets]
    expected = np.mean([np.mean(a != b) for a, b in itertools.combinations(predictions, 2)])
    assert result["disagreement"] == pytest.approx(expected) and 0 < expected < 1


# -- out-of-distribution scores -----------------------------------------------------------


def brute_force_auroc(labels, scores):
    positives, negatives = scores[labels], scores[~labels]
    wins = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return wins / (len(positives) * len(negatives))


def brute_force_average_precision(labels, scores):
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= threshold
        precision = (chosen & labels).sum() / chosen.sum()
        recall = (chosen & labels).sum() / labels.sum()
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def test_auroc_and_aupr_match_a_direct_computation_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.normal(size=300) + labels, 1)  # rounding makes ties
    assert auroc(labels, scores) == pytest.approx(brute_force_auroc(labels, scores), abs=1e-12)
    assert aupr(labels, scores) == pytest.approx(brute_force_average_precision(labels, scores), abs=1e-12)


def test_ood_scores_of_a_point_a_subspace_ensemble_and_a_list_of_models():
    model = bn_line()
    x, y = tiny_data(n=48)
    far = 4.0 * tiny_data(n=40, seed=1)[0]
    model.set_alpha(0.5)
    ts.recompute_batchnorm(model, x)
    single = ts.evaluate.ood(model, x, far)
    probabilities_in = tf.nn.softmax(model.predict(x, verbose=0).astype(np.float64)).numpy()
    probabilities_out = tf.nn.softmax(model.predict(far, verbose=0).astype(np.float64)).numpy()
    both = np.concatenate([probabilities_in, probabilities_out])
    is_out = np.r_[np.zeros(len(x), bool), np.ones(len(far), bool)]
    entropy = -np.sum(both * np.log(both), axis=1)
    assert single["entropy"]["auroc"] == pytest.approx(brute_force_auroc(is_out, entropy), abs=1e-9)
    assert single["entropy"]["aupr"] == pytest.approx(brute_force_average_precision(is_out, entropy), abs=1e-9)
    confidence = 1.0 - both.max(axis=1)
    assert single["max_probability"]["auroc"] == pytest.approx(brute_force_auroc(is_out, confidence), abs=1e-9)
    assert [row["score"] for row in single] == ["max_probability", "entropy"]
    points = ts.evaluate.ood(model, (x, y), far, alphas=[0.0, 1.0], batchnorm_data=x)
    assert 0.0 <= points["entropy"]["auroc"] <= 1.0 and model.alpha == 0.5
    models = ts.evaluate.ood([model.bake(0.0), model.bake(1.0)], x, far)
    assert 0.0 <= models["max_probability"]["aupr"] <= 1.0


# -- planes through nested networks ------------------------------------------------------


def nested_network(seed):
    keras.utils.set_random_seed(seed)
    inner_input = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu")(inner_input)
    hidden = keras.layers.BatchNormalization()(hidden)
    hidden = keras.layers.Dense(4, activation="tanh")(hidden)
    inner = keras.Model(inner_input, hidden)
    outer_input = keras.Input((6,))
    side = keras.layers.Dense(4)(outer_input)  # built before the nested model: graph order differs from creation
    merged = keras.layers.Add()([inner(outer_input), side])
    return keras.Model(outer_input, keras.layers.Dense(3)(merged))


def test_plane_puts_every_weight_of_a_nested_network_in_its_place():
    nets = [nested_network(seed) for seed in range(3)]
    x = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    y = np.arange(40) % 3
    result = ts.plane(nets, nets[0], (x, y), grid=3, margin=0.1, batchnorm_steps=None)
    flats = [ts.connectivity.flat_weights(net) for net in nets]
    difference = np.stack([flats[1] - flats[0], flats[2] - flats[0]], axis=1)
    for j, i in itertools.product(range(3), range(3)):
        weights = result.weights_at(result.x[i], result.y[j])
        (a, b), *_ = np.linalg.lstsq(difference, weights - flats[0], rcond=None)
        # The direct model: Keras' own weight lists of the three nets, mixed with the same coefficients.
        direct = keras.models.clone_model(nets[0])
        mixed = [(1 - a - b) * w0 + a * w1 + b * w2
                 for w0, w1, w2 in zip(*(net.get_weights() for net in nets))]
        direct.set_weights(mixed)
        ts.recompute_batchnorm(direct, x)
        probabilities = tf.nn.softmax(direct.predict(x, verbose=0).astype(np.float64)).numpy()
        nll = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
        assert result.nll[j, i] == pytest.approx(nll, rel=1e-4), (j, i)
