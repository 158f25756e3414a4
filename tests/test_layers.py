"""Subspace layers: config, weight copies, equality with the stock op, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from tfsubspace.layers import SUBSPACE_LAYERS

# (stock class, constructor kwargs, example input)
CASES = [
    (keras.layers.Dense, dict(units=3), np.ones((2, 4))),
    (keras.layers.EinsumDense, dict(equation="ab,bc->ac", output_shape=3, bias_axes="c"), np.ones((2, 4))),
    (keras.layers.Embedding, dict(input_dim=7, output_dim=3), np.array([[1, 2, 6]])),
    (keras.layers.Conv1D, dict(filters=3, kernel_size=2), np.ones((2, 5, 2))),
    (keras.layers.Conv2D, dict(filters=3, kernel_size=3, padding="same"), np.ones((2, 5, 5, 2))),
    (keras.layers.Conv3D, dict(filters=2, kernel_size=2), np.ones((1, 3, 3, 3, 1))),
    (keras.layers.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2), np.ones((1, 3, 3, 2))),
    (keras.layers.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=2), np.ones((2, 5, 5, 2))),
    (keras.layers.SeparableConv2D, dict(filters=3, kernel_size=3), np.ones((2, 5, 5, 2))),
    (keras.layers.BatchNormalization, dict(), np.ones((4, 3))),
    (keras.layers.LayerNormalization, dict(), np.ones((2, 3))),
    (keras.layers.GroupNormalization, dict(groups=2), np.ones((2, 4))),
]
IDS = [case[0].__name__ for case in CASES]


def random_input(example, seed=0):
    rng = np.random.default_rng(seed)
    if example.dtype.kind in "iu":
        return example
    return rng.normal(size=example.shape).astype("float32")


def build_pair(stock_class, kwargs, example, num_points=3, init="independent"):
    layer = SUBSPACE_LAYERS[stock_class](num_points=num_points, init=init, **kwargs)
    layer(random_input(example))
    stock = stock_class(**kwargs)
    stock(random_input(example))
    return layer, stock


def test_every_supported_stock_layer_is_covered_here():
    assert {case[0] for case in CASES} == set(SUBSPACE_LAYERS)


@pytest.mark.parametrize("stock_class, kwargs, example", CASES, ids=IDS)
def test_wraps_stock_layer_and_config_round_trips(stock_class, kwargs, example):
    layer, _ = build_pair(stock_class, kwargs, example, num_points=4, init="point")
    assert type(layer.layer) is stock_class and isinstance(layer, ts.layers.Subspace)
    config = layer.get_config()
    assert config["num_points"] == 4 and config["init"] == "point"
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)


@pytest.mark.parametrize("stock_class, kwargs, example", CASES, ids=IDS)
def test_weight_count_is_m_copies_of_each_stock_weight(stock_class, kwargs, example):
    layer, stock = build_pair(stock_class, kwargs, example, num_points=3)
    # One stacked (m, ...) variable per stock weight.
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(3,) + tuple(w.shape) for w in stock.trainable_weights]
    assert layer.count_params() == 3 * sum(int(np.prod(w.shape)) for w in stock.trainable_weights) + sum(
        int(np.prod(w.shape)) for w in stock.non_trainable_weights
    ) + 3  # + the coefficients
    for copies, stock_weight in zip(layer.subspace_weights.values(), stock.trainable_weights):
        assert all(tuple(c.shape) == tuple(stock_weight.shape) for c in copies)


@pytest.mark.parametrize("stock_class, kwargs, example", CASES, ids=IDS)
def test_output_at_each_vertex_equals_stock_layer_with_that_copy(stock_class, kwargs, example):
    layer, stock = build_pair(stock_class, kwargs, example, num_points=3)
    x = random_input(example, seed=1)
    for index in range(3):
        layer.set_coefficients(np.eye(3)[index])
        for copies, stock_weight in zip(layer.subspace_weights.values(), stock.trainable_weights):
            stock_weight.assign(copies[index])
        np.testing.assert_allclose(layer(x), stock(x), atol=1e-5)


@pytest.mark.parametrize("stock_class, kwargs, example", CASES, ids=IDS)
def test_output_at_a_mixture_equals_stock_layer_with_mixed_weights(stock_class, kwargs, example):
    layer, stock = build_pair(stock_class, kwargs, example, num_points=3)
    c = np.array([0.2, 0.5, 0.3], "float32")
    layer.set_coefficients(c)
    for copies, stock_weight in zip(layer.subspace_weights.values(), stock.trainable_weights):
        stock_weight.assign(sum(ci * w.numpy() for ci, w in zip(c, copies)))
    x = random_input(example, seed=2)
    np.testing.assert_allclose(layer(x), stock(x), atol=1e-5)


def test_independent_init_draws_different_copies_with_stock_distribution():
    layer = ts.layers.SubspaceDense(256, num_points=3)
    layer(np.ones((1, 512), "float32"))
    k = [c.numpy() for c in layer.subspace_weights["kernel"]]
    assert not np.allclose(k[0], k[1]) and not np.allclose(k[1], k[2])
    # Glorot uniform: U(±sqrt(6/(fan_in+fan_out))) for each copy.
    limit = np.sqrt(6 / (512 + 256))
    for copy in k:
        assert np.abs(copy).max() <= limit
        assert abs(copy.std() - limit / np.sqrt(3)) < 0.01


def test_seeded_initializer_still_gives_independent_but_reproducible_copies():
    def build():
        layer = ts.layers.SubspaceConv2D(4, 3, kernel_initializer=keras.initializers.HeNormal(seed=5), num_points=2)
        layer(np.ones((1, 5, 5, 2), "float32"))
        return [c.numpy() for c in layer.subspace_weights["kernel"]]

    first, second = build(), build()
    assert not np.allclose(first[0], first[1])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    stock = keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.HeNormal(seed=5))
    stock(np.ones((1, 5, 5, 2), "float32"))
    np.testing.assert_array_equal(first[0], stock.kernel.numpy())  # copy 0 = the stock draw


def test_point_init_gives_all_copies_one_value():
    layer = ts.layers.SubspaceDense(8, num_points=4, init="point")
    layer(np.ones((1, 5), "float32"))
    k = [c.numpy() for c in layer.subspace_weights["kernel"]]
    for copy in k[1:]:
        np.testing.assert_array_equal(copy, k[0])
    assert np.abs(k[0]).max() > 0


def test_gradient_reaching_each_copy_is_its_coefficient_times_gradient_at_theta():
    layer = ts.layers.SubspaceConv2D(3, 3, num_points=3)
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
    layer(x)
    c = np.array([0.1, 0.6, 0.3], "float32")
    layer.set_coefficients(c)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    by_key = dict(zip(["kernel", "bias"], grads))

    stock = keras.layers.Conv2D(3, 3)
    stock(x)
    theta = layer.combined_weights()
    stock.kernel.assign(theta["kernel"])
    stock.bias.assign(theta["bias"])
    with tf.GradientTape() as tape:
        stock_loss = tf.reduce_sum(tf.square(stock(x)))
    grad_kernel, grad_bias = tape.gradient(stock_loss, [stock.kernel, stock.bias])
    np.testing.assert_allclose(loss, stock_loss, rtol=1e-6)
    for key, grad_theta in [("kernel", grad_kernel), ("bias", grad_bias)]:
        for index, ci in enumerate(c):
            np.testing.assert_allclose(by_key[key][index], ci * grad_theta.numpy(), rtol=1e-5, atol=1e-6)


def test_one_training_step_moves_every_copy_in_a_model():
    inputs = keras.Input((4,))
    outputs = ts.layers.SubspaceDense(2, num_points=2)(ts.layers.SubspaceLayerNormalization(num_points=2)(inputs))
    model = keras.Model(inputs, outputs)
    model.layers[1].set_coefficients([0.5, 0.5])
    model.layers[2].set_coefficients([0.5, 0.5])
    before = [w.numpy() for w in model.trainable_weights]
    model.compile("sgd", "mse")
    model.train_on_batch(np.ones((8, 4), "float32") * np.arange(4), np.ones((8, 2), "float32"))
    moved = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(moved)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(num_points=0), "num_points"), (dict(num_points=2.0), "num_points"), (dict(init="zeros"), "init")],
)
def test_bad_layer_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ts.layers.SubspaceDense(3, **kwargs)
