"""recompute_batchnorm: exact pooled statistics at α, not momentum averages."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from conftest import small_cnn, tiny_data


def test_first_layer_batchnorm_gets_the_exact_mean_and_variance_of_all_data():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(300, 5)).astype("float32") * np.arange(1, 6)
    model = keras.Sequential([keras.Input((5,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    # 300 = 2 full batches of 128 + one of 44: uneven batches are pooled exactly.
    ts.recompute_batchnorm(model, x, batch_size=128)
    bn = model.layers[0]
    np.testing.assert_allclose(bn.moving_mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, x.var(0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored


def test_steps_limits_the_batches_used():
    x = np.concatenate([np.zeros((64, 2)), np.ones((64, 2))]).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    ts.recompute_batchnorm(model, tf.data.Dataset.from_tensor_slices((x, x)).batch(64), steps=1)
    np.testing.assert_allclose(model.layers[0].moving_mean, [0.0, 0.0])


def test_subspace_model_statistics_match_direct_computation_at_alpha():
    x, _ = tiny_data(n=96)
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    ts.recompute_batchnorm(model, x, alpha=0.2, batch_size=32)
    assert model.alpha == pytest.approx(0.2)
    # Direct: the input of the BN layer at α = 0.2 is conv(x) with the mixed kernel.
    plain = model.bake(0.2)
    conv_out = plain.get_layer("conv")(x).numpy().reshape(-1, 4)
    bn = model.network.get_layer("bn").layer
    np.testing.assert_allclose(bn.moving_mean, conv_out.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, conv_out.var(0), rtol=1e-3, atol=1e-6)


def test_statistics_differ_between_alphas():
    x, _ = tiny_data(n=64)
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    ts.recompute_batchnorm(model, x, alpha=0.0)
    at_start = model.network.get_layer("bn").layer.moving_mean.numpy().copy()
    ts.recompute_batchnorm(model, x, alpha=1.0)
    assert not np.allclose(at_start, model.network.get_layer("bn").layer.moving_mean.numpy())


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "steps"), ({"alpha": 2.0}, "alpha")])
def test_bad_arguments(kwargs, match):
    x, _ = tiny_data(n=8)
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    with pytest.raises(ValueError, match=match):
        ts.recompute_batchnorm(model, x, **kwargs)


def test_alpha_on_a_plain_model_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        ts.recompute_batchnorm(small_cnn(), np.zeros((4, 8, 8, 1), "float32"), alpha=0.5)
