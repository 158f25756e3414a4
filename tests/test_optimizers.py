"""ts.optimizers.SGD: the papers' (PyTorch) L2 weight decay and Keras' decoupled one."""

import keras
import numpy as np
import pytest

import tfsubspace as ts


def _torch_sgd(w, grads, lrs, momentum, wd, nesterov=False):
    """torch.optim.SGD's step written out: v ← μv + g + wd·w; w ← w − lr·v (first step v = g)."""
    w, v = w.copy(), None
    for g, lr in zip(grads, lrs):
        g = g + wd * w
        v = g.copy() if v is None else momentum * v + g
        w = w - lr * (g + momentum * v if nesterov else v)
    return w


def _run(optimizer, w0, grads):
    w = keras.Variable(w0.copy())
    for g in grads:
        optimizer.apply([g], [w])
    return w.numpy()


@pytest.mark.parametrize("nesterov", [False, True])
def test_l2_mode_follows_three_pytorch_sgd_steps_with_a_changing_learning_rate(nesterov):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=5).astype("float32")
    grads = [rng.normal(size=5).astype("float32") for _ in range(3)]
    # A schedule: PyTorch scales the whole velocity by the current lr.
    lrs = [0.1, 0.05, 0.2]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0, 1], lrs)
    sgd = ts.optimizers.SGD(schedule, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    expected = _torch_sgd(w0.astype("float64"), grads, lrs, 0.9, 0.01, nesterov)
    np.testing.assert_allclose(_run(sgd, w0, grads), expected, rtol=1e-5, atol=1e-6)


def test_l2_mode_without_momentum_is_gradient_plus_decay():
    w0 = np.array([1.0, -2.0], "float32")
    g = np.array([0.5, 0.5], "float32")
    out = _run(ts.optimizers.SGD(0.1, weight_decay=0.1), w0, [g])
    np.testing.assert_allclose(out, w0 - 0.1 * (g + 0.1 * w0), rtol=1e-6)


def test_decoupled_mode_equals_keras_sgd():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=4).astype("float32")
    grads = [rng.normal(size=4).astype("float32") for _ in range(3)]
    ours = ts.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.01, weight_decay_mode="decoupled")
    stock = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.01)
    np.testing.assert_allclose(_run(ours, w0, grads), _run(stock, w0, grads), rtol=1e-6)


def test_l2_decay_is_about_ten_times_the_decoupled_one_at_momentum_0_9():
    """Zero loss gradient: only the decay moves w. Over many steps the coupled form
    shrinks like exp(-lr·wd·t/(1-μ)), the decoupled like exp(-lr·wd·t)."""
    w0 = np.ones(1, "float32")
    zeros = [np.zeros(1, "float32")] * 2000
    l2 = _run(ts.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-3), w0, zeros)
    decoupled = _run(ts.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-3, weight_decay_mode="decoupled"), w0, zeros)
    ratio = np.log(l2[0]) / np.log(decoupled[0])
    assert 9.5 < ratio < 10.5


def test_frozen_subspace_copies_are_not_decayed():
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model = ts.convert(base, ts.Line(), seed=0)
    model.freeze_points([0])
    before = [v.numpy().copy() for v in model.weights if not v.trainable and v.name.startswith(("kernel", "bias"))]
    model.compile(ts.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.5), "mse")
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), epochs=2, verbose=0)
    after = [v.numpy() for v in model.weights if not v.trainable and v.name.startswith(("kernel", "bias"))]
    assert before and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_config_round_trip_keeps_mode_and_coefficient():
    sgd = ts.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-4)
    clone = ts.optimizers.SGD.from_config(sgd.get_config())
    assert (clone.weight_decay_mode, clone.decay_coefficient, clone.weight_decay) == ("l2", 1e-4, None)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(sgd, "mse")
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(sgd)), ts.optimizers.SGD)


def test_private_keras_variable_index_used_by_the_l2_update_still_exists():
    """`update_step` finds the velocity slot with Keras' `_get_variable_index` (BUILD_NOTES.md)."""
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    w = keras.Variable(np.ones(2, "float32"))
    sgd.build([w])
    assert sgd._get_variable_index(w) == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"weight_decay_mode": "pytorch"}, "weight_decay_mode"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"momentum": 1.5}, "momentum"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        ts.optimizers.SGD(0.1, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mode", ["l2", "decoupled"])
def test_binary_optimizer_follows_config_weight_decay_mode(mode):
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import common

    config = config_lib.base_config()
    assert (config.train.weight_decay_mode, config.train.weight_decay) == ("l2", 1e-4)  # the papers' recipe
    config.train.weight_decay_mode = mode
    optimizer = common.build_optimizer(config_lib.validate(config), steps_per_epoch=10)
    assert isinstance(optimizer, ts.optimizers.SGD)
    assert (optimizer.weight_decay_mode, optimizer.decay_coefficient) == (mode, 1e-4)


def test_config_refuses_an_unknown_weight_decay_mode():
    from tfsubspace import config as config_lib

    config = config_lib.base_config()
    config.train.weight_decay_mode = "coupled"
    with pytest.raises(ValueError, match=r"config.train.weight_decay_mode must be one of \('l2', 'decoupled'\)"):
        config_lib.validate(config)
