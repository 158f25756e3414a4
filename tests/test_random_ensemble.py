"""The binary's "random ensemble" (001 §4.5, Fig. 11) against a direct computation."""

import types

import keras
import numpy as np
import tensorflow as tf

import tfsubspace as ts
from tfsubspace import config as config_lib
from tfsubspace.experiments import subspace


def test_random_ensemble_is_the_mean_of_softmax_at_points_drawn_like_training():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                             keras.layers.Dense(3)])
    model = ts.convert(base, ts.Simplex(num_vertices=3), seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 5)).astype("float32"), rng.integers(0, 3, size=96)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    config = config_lib.base_config()
    config.seed, config.eval.random_ensemble, config.eval.batchnorm_steps = 7, 4, None
    result = subspace.random_ensemble(model, types.SimpleNamespace(test=data, train_eval=data), config)

    points = ts.evaluate.random_points(model, 4, seed=7)
    assert result["points"] == points and len({tuple(p) for p in points}) == 4
    probabilities = []
    for point in points:
        model.set_point(alpha=point)
        ts.recompute_batchnorm(model, data, alpha=point, steps=None)
        probabilities.append(tf.nn.softmax(model.predict(x, verbose=0)).numpy())
    mean = np.mean(probabilities, axis=0)
    assert abs(result["ensemble"]["accuracy"] - np.mean(mean.argmax(1) == y)) < 1e-6
    assert abs(result["ensemble"]["nll"] - np.mean(-np.log(mean[np.arange(96), y]))) < 1e-4
