"""The α sequence is a function of (seed, step) only: the same under XLA and on every device."""

import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts


@pytest.mark.parametrize("shape", [ts.Line(), ts.Bezier(2), ts.Simplex(4)], ids=["line", "bezier", "simplex"])
@pytest.mark.parametrize("sampling", ["per_batch", "per_layer"])
def test_alpha_and_pair_sequences_are_identical_with_and_without_jit_compile(shape, sampling):
    sampler = ts.Sampler(shape, num_layers=3, sampling=sampling, seed=11)

    def draw(step):
        j, k = sampler.pair(step)
        return sampler.alphas(step), j, k, sampler.coefficients(step)

    plain = tf.function(draw, jit_compile=False)
    xla = tf.function(draw, jit_compile=True)
    for step in [0, 1, 7, 12345]:
        step = tf.constant(step, tf.int64)
        eager_values = [np.asarray(v) for v in draw(step)]
        for compiled in (plain, xla):
            *exact, coefficients = compiled(step)
            for got, want in zip(exact, eager_values[:3]):  # α and the pair: bit for bit
                np.testing.assert_array_equal(np.asarray(got), want)
            # Coefficients are powers of α (Bernstein): XLA's pow may differ in the last bit.
            np.testing.assert_allclose(coefficients, eager_values[3], rtol=1e-6, atol=1e-7)


def test_counter_random_numbers_are_uniform_and_keyed_on_both_seed_words():
    from tfsubspace.counter_random import integers, uniform

    values = uniform([100_000], tf.constant([3, 4], tf.int64)).numpy()
    assert 0.0 < values.min() and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.005 and abs(values.var() - 1 / 12) < 0.002
    histogram = np.bincount(integers([60_000], tf.constant([3, 4], tf.int64), 6).numpy(), minlength=6)
    assert histogram.min() > 9_500 and histogram.max() < 10_500
    for other in ([3, 5], [4, 4]):
        assert not np.allclose(uniform([8], tf.constant(other, tf.int64)), values[:8])


def test_cos2_of_a_sampled_pair_compiles_once_under_xla_with_the_pair_as_a_runtime_value():
    # Slicing gram[j, k] by the sampled pair made XLA treat j, k as compile-time
    # constants: a simplex(6) train step recompiled (seconds) at every new pair.
    from tfsubspace.regularizers import gram_matrix, pair_statistics

    stack = tf.constant(np.random.default_rng(0).normal(size=(6, 4, 3)), tf.float32)
    statistics = tf.function(lambda j, k: pair_statistics(gram_matrix([stack]), j, k), jit_compile=True)
    spec = tf.TensorSpec([], tf.int64)
    # Lowering with symbolic j, k fails when they must be constants.
    assert "gather" in statistics.experimental_get_compiler_ir(spec, spec)(stage="hlo")
    flat = stack.numpy().reshape(6, -1)
    for j, k in [(0, 5), (3, 1), (2, 4)]:
        got = [float(v) for v in statistics(tf.constant(j, tf.int64), tf.constant(k, tf.int64))]
        np.testing.assert_allclose(got, [flat[j] @ flat[k], flat[j] @ flat[j], flat[k] @ flat[k]], rtol=1e-5)
