"""Curve training's L2 term (paper 003's reference): ½·wd·‖θ(t)‖² in the loss, no optimizer decay."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts


def _pair():
    def network():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
                                 keras.layers.Dense(2)])

    a, b = network(), network()
    for variable in b.trainable_weights:
        variable.assign(variable + 0.5)
    return a, b


def test_a_bend_receives_wd_times_its_coefficient_times_theta():
    a, b = _pair()
    wd = 0.3
    model = ts.connect(a, b, ts.Bezier(num_bends=1), seed=0, weight_decay=wd)
    c = model.subspace_shape.coefficients(0.3)
    model.write_coefficients(c)
    layer = model.subspace_layers[0]
    with tf.GradientTape() as tape:
        penalty = model.point_l2_penalty()
    trainable = layer.trainable_weights  # the bend's copies only: the endpoints are frozen
    gradients = tape.gradient(penalty, trainable)
    theta = layer.combined_weights(c)
    expected_penalty = 0.5 * wd * sum(float(np.sum(np.square(t))) for lay in model.subspace_layers
                                      for t in lay.combined_weights(c).values())
    assert float(penalty) == pytest.approx(expected_penalty, rel=1e-5)
    for gradient, key in zip(gradients, theta):
        # A stacked variable of the trainable copies (here the one bend, copy 1).
        np.testing.assert_allclose(np.asarray(gradient)[0], wd * float(c[1]) * np.asarray(theta[key]), rtol=1e-5, atol=1e-7)


def test_the_penalty_enters_the_training_loss_only_with_a_positive_weight_decay():
    a, b = _pair()
    x, y = np.random.default_rng(0).normal(size=(16, 3)).astype("float32"), np.zeros((16, 2), "float32")
    losses = []
    for wd in (0.0, 10.0):
        model = ts.connect(a, b, ts.PolyChain(num_bends=1), seed=0, weight_decay=wd)
        model.compile(keras.optimizers.SGD(0.0), "mse")
        losses.append(model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"][0])
    assert losses[1] > losses[0] + 1.0
    assert ts.SubspaceModel.from_config(model.get_config()).point_weight_decay == 10.0


def test_connect_refuses_a_negative_weight_decay_in_one_line():
    a, b = _pair()
    with pytest.raises(ValueError, match="`weight_decay` must be") as info:
        ts.connect(a, b, weight_decay=-1.0)
    assert "\n" not in str(info.value)


def test_the_binary_trains_curves_with_the_l2_term_and_no_optimizer_decay(monkeypatch):
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import common
    from tfsubspace.experiments import connectivity as runner

    compiled = {}

    def record(model, config, steps_per_epoch, schedule=None):
        compiled.update(model=model, weight_decay=config.train.weight_decay)

    monkeypatch.setattr(common, "compile_model", record)
    monkeypatch.setattr(common, "fit", lambda *args, **kwargs: ({}, 0.0))

    class Data:
        steps_per_epoch = 2

    config = config_lib.base_config()
    a, b = _pair()
    runner.train_curve("bezier", a, b, config, Data(), "/nonexistent")
    assert compiled["weight_decay"] == 0.0
    assert compiled["model"].point_weight_decay == config.train.weight_decay == 1e-4

