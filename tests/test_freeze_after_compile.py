"""`freeze_points` works whenever it is called: before compile, after compile, between two fits."""

import keras
import numpy as np
import pytest

import tfsubspace as ts

X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
Y = np.arange(16) % 3


def compiled():
    model = ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), ts.Line(), seed=0)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def copies(model):
    return [v.numpy().copy() for v in model.subspace_layers[0].subspace_weights["kernel"]]


@pytest.mark.parametrize("when", ["after_compile", "between_fits"])
def test_a_point_frozen_after_compile_stays_bit_identical_while_the_others_train(when):
    model = compiled()
    if when == "between_fits":
        model.fit(X, Y, epochs=1, verbose=0)  # traces the train step with both copies trainable
    before = copies(model)
    model.freeze_points([0])
    model.fit(X, Y, epochs=2, verbose=0)
    after = copies(model)
    np.testing.assert_array_equal(after[0], before[0])  # untouched by gradients, momentum and weight decay
    assert not np.array_equal(after[1], before[1])


def test_freezing_more_points_after_training_and_unfreezing_before_the_optimizer_is_built_work():
    model = compiled()
    model.freeze_points([0])
    model.freeze_points([1])  # the optimizer is not built yet: any change is fine
    before = copies(model)
    model.fit(X, Y, epochs=1, verbose=0)
    after = copies(model)
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[0], before[0])
    model.freeze_points([0, 1])  # freezing more once built is fine too
    model.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(copies(model)[0], after[0])
