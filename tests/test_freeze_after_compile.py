"""`freeze_points` works before compile and after it until the optimizer is built; later it is one clear line."""

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


def test_a_point_frozen_after_compile_stays_bit_identical_while_the_others_train():
    model = compiled()
    before = copies(model)
    model.freeze_points([0])
    model.fit(X, Y, epochs=2, verbose=0)
    after = copies(model)
    np.testing.assert_array_equal(after[0], before[0])  # untouched by gradients, momentum and weight decay
    assert not np.array_equal(after[1], before[1])


def test_refreezing_before_the_optimizer_is_built_works_and_after_it_is_one_line():
    model = compiled()
    model.freeze_points([0])
    model.freeze_points([1])  # the optimizer is not built yet: any change is fine
    before = copies(model)
    model.fit(X, Y, epochs=1, verbose=0)
    after = copies(model)
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[0], before[0])
    model.freeze_points([1])  # no change: fine
    with pytest.raises(ValueError, match=r"`indices` \[0, 1\] would change the frozen points \[1\]") as info:
        model.freeze_points([0, 1])
    assert "\n" not in str(info.value)
    assert model.frozen_points == (1,)  # left as it was
    model.fit(X, Y, epochs=1, verbose=0)  # and still trains
