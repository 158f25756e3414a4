"""One set of argument checks: numpy scalars accepted, bools refused, the library and config.validate agree."""

import keras
import numpy as np
import pytest

import tfsubspace as ts
from tfsubspace import checks
from tfsubspace import config as config_lib
from tfsubspace import data


def dense_net():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3), np.array(3)])
def test_integer_accepts_python_and_numpy_integers(value):
    assert checks.integer(value, "`n`", minimum=1) == 3 and type(checks.integer(value, "`n`")) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 3.0, np.float64(3), "3", None, [3]])
def test_integer_refuses_bools_floats_and_strings_in_one_line(value):
    with pytest.raises(ValueError, match=r"^`n` must be an integer >= 1, got .*\.$"):
        checks.integer(value, "`n`", minimum=1)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.array(0.5), 1, np.int64(1)])
def test_number_accepts_python_and_numpy_numbers(value):
    assert checks.number(value, "`x`", minimum=0) == float(value)


@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), np.float32("nan"), -1.0, "1", 1j])
def test_number_refuses_bools_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"`x` must be a finite number >= 0"):
        checks.number(value, "`x`", minimum=0)


def test_open_bounds_and_fractions():
    with pytest.raises(ValueError, match=r"`t` must be a finite number > 0, got 0"):
        checks.number(0, "`t`", minimum=0, minimum_open=True)
    assert checks.fraction(1, "`f`") == 1.0
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        checks.fraction(1, "`f`", closed=False)


def test_point_indices_accept_numpy_arrays_and_refuse_bools_floats_and_strings():
    assert checks.point_indices(np.array([2, 0, 2]), 3) == (0, 2)
    for bad in ([True], [1.0], "01", 1, [3], [-1]):
        with pytest.raises(ValueError, match=r"`indices` must be a list of point indices in \[0, 2\]"):
            checks.point_indices(bad, 3)


# ---------------------------------------------------------------- numpy scalars reach the library


def test_numpy_scalars_are_accepted_by_convert_sampler_freeze_points_and_data():
    model = ts.convert(dense_net(), ts.Line(), beta=np.float32(1.0), seed=np.int64(3))
    assert model.beta == 1.0 and model.seed == 3 and type(model.seed) is int
    assert ts.Sampler(ts.Simplex(np.int64(3)), num_layers=np.int64(2), seed=np.uint16(1)).num_layers == 2
    model.freeze_points(np.array([0]))
    assert model.frozen_points == (0,)
    model.set_alpha(np.float32(0.25))
    assert model.alpha == 0.25
    dataset = data.make_pipeline(np.zeros((6, 4, 4), np.uint8), np.arange(6), batch_size=np.int64(4),
                                 training=np.bool_(True), seed=np.int64(2))
    assert [int(x.shape[0]) for x, _ in dataset] == [4, 2]


# ---------------------------------------------------------------- the library and config.validate agree

SEEDS = [0, 7, np.int64(7), 2**31 - 2, 2**31 - 1, 3 * 10**9, 2**32, -1, True, 1.0]


def _verdict(call):
    try:
        call()
    except ValueError:
        return False
    return True


def config_with(section, key, value):
    """base_config() with one value of any type (a ConfigDict field keeps its first type, so build anew)."""
    import ml_collections

    tree = config_lib.base_config().to_dict()
    (tree[section] if section else tree)[key] = value
    return ml_collections.ConfigDict(tree)


def _validate_seed(seed, field):
    config = config_with(None, "seed", seed) if field == "seed" else config_with("dataset", "label_noise_seed", seed)
    return lambda: config_lib.validate(config)


@pytest.mark.parametrize("seed", SEEDS, ids=repr)
def test_a_seed_passes_config_validate_exactly_when_it_passes_every_library_seed_check(seed):
    config_verdict = _verdict(_validate_seed(seed, "seed"))
    library = {
        "convert": _verdict(lambda: ts.convert(dense_net(), ts.Line(), seed=seed)),
        "sampler": _verdict(lambda: ts.Sampler(ts.Line(), 1, seed=seed)),
        "data": _verdict(lambda: data.make_pipeline(np.zeros((2, 4, 4), np.uint8), np.arange(2), batch_size=2,
                                                    training=True, seed=seed)),
        "label_noise_seed": _verdict(_validate_seed(seed, "label_noise_seed")),
    }
    assert set(library.values()) == {config_verdict}, (config_verdict, library)


def test_a_seed_whose_derived_seeds_leave_the_range_is_refused_before_anything_trains():
    config = config_lib.base_config()
    config.method, config.seed, config.baseline.ensemble_size = "standard_ensemble", checks.SEED_MAX - 1, 3
    with pytest.raises(ValueError, match=r"config\.seed must be <= 2147483644 for method 'standard_ensemble'"):
        config_lib.validate(config)
    config.baseline.ensemble_size = 2
    assert config_lib.validate(config) is config


@pytest.mark.parametrize("value", [np.float32(0.5), np.int64(2), True, float("nan")], ids=repr)
def test_beta_passes_config_validate_exactly_when_it_passes_convert(value):
    config = config_with("subspace", "beta", value)
    assert _verdict(lambda: config_lib.validate(config)) == _verdict(
        lambda: ts.convert(dense_net(), ts.Line(), beta=value, seed=0))


# -- the evaluation package's steps, k and temperature go through `checks` ----------------------


def _bn_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    model(np.zeros((2, 4), "float32"))
    return model


def _bn_data():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).normal(size=(8, 4)).astype("float32")).batch(4)


@pytest.mark.parametrize("steps", [np.int64(2), np.int32(1), np.array(2)])
def test_recompute_batchnorm_accepts_numpy_integer_steps(steps):
    ts.recompute_batchnorm(_bn_model(), _bn_data(), steps=steps)


@pytest.mark.parametrize("steps", [True, 0, 2.5, np.float32(2), "2"])
def test_recompute_batchnorm_refuses_bad_steps_in_one_line_naming_it(steps):
    with pytest.raises(ValueError, match=r"^`steps` must be an integer >= 1 or None, got .*\.$"):
        ts.recompute_batchnorm(_bn_model(), _bn_data(), steps=steps)


def test_recompute_batchnorm_refuses_an_infinite_dataset_without_steps_in_one_line():
    with pytest.raises(ValueError) as error:
        ts.recompute_batchnorm(_bn_model(), _bn_data().repeat(), steps=None)
    message = str(error.value)
    assert "\n" not in message and "`steps`" in message and "infinite" in message, message


@pytest.mark.parametrize("value", [np.int64(3), np.array(3), 3])
def test_random_points_accepts_numpy_integer_k(value):
    model = ts.convert(dense_net(), ts.Line(), seed=0)
    assert len(ts.evaluation.random_points(model, value)) == 3


@pytest.mark.parametrize("value", [True, 0, 3.0])
def test_random_points_refuses_bad_k_in_one_line_naming_it(value):
    model = ts.convert(dense_net(), ts.Line(), seed=0)
    with pytest.raises(ValueError, match=r"^`k` must be an integer >= 1, got .*\.$"):
        ts.evaluation.random_points(model, value)


@pytest.mark.parametrize("value", [np.float32(2.0), np.array(1.5), np.int64(2)])
def test_temperature_accepts_numpy_numbers(value):
    from tfsubspace.evaluation.forward import check_temperature

    assert check_temperature(value) == float(value)


@pytest.mark.parametrize("value", [True, 0, -1.0, float("nan"), np.float32("inf"), "1"])
def test_temperature_refuses_bools_and_non_positive_in_one_line_naming_it(value):
    from tfsubspace.evaluation.forward import check_temperature

    with pytest.raises(ValueError, match=r"^`temperature` must be a finite number > 0, got .*\.$"):
        check_temperature(value)


def test_evaluation_integer_arguments_agree_with_checks_integer():
    from tfsubspace.evaluation.reader import check_int

    for value in (3, np.int64(3), np.array(3), True, 3.0, np.float64(3), 0, None):
        expected, actual = _verdict(lambda: checks.integer(value, "`n`", minimum=1)), _verdict(lambda: check_int(value, "n", 1))
        assert actual == expected, (value, actual, expected)
