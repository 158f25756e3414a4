"""`ts.layers.Subspace`, the one generic mechanism: any layer, exact numerics and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts

RNG = np.random.default_rng(0)


@keras.saving.register_keras_serializable(package="tfsubspace_tests")
class LayerScale(keras.layers.Layer):
    """ConvNeXt-style per-channel scale: a custom layer with its own add_weight."""

    def __init__(self, init_value=0.5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],), initializer=keras.initializers.RandomNormal(self.init_value, 0.1)
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="tfsubspace_tests")
class AttentionBlock(keras.layers.Layer):
    """A custom block with attention and a LayerNormalization inside it."""

    def __init__(self, width=8, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.attention = keras.layers.MultiHeadAttention(2, width // 2, name="attention")
        self.norm = keras.layers.LayerNormalization(name="norm")

    def build(self, input_shape):
        self.attention.build(input_shape, input_shape)
        self.norm.build(input_shape)

    def call(self, x):
        return self.norm(x + self.attention(x, x))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def sequences(shape=(3, 5, 8)):
    return RNG.normal(size=shape).astype("float32")


CASES = {
    "multi_head_attention": (lambda: keras.layers.MultiHeadAttention(2, 4), lambda x: (x, x)),
    "lstm": (lambda: keras.layers.LSTM(4, return_sequences=True), lambda x: (x,)),
    "gru": (lambda: keras.layers.GRU(3), lambda x: (x,)),
    "simple_rnn": (lambda: keras.layers.SimpleRNN(3), lambda x: (x,)),
    "bidirectional_gru": (lambda: keras.layers.Bidirectional(keras.layers.GRU(3)), lambda x: (x,)),
    "layer_scale": (LayerScale, lambda x: (x,)),
    "attention_block": (AttentionBlock, lambda x: (x,)),
    "prelu": (keras.layers.PReLU, lambda x: (x,)),
}


def stock_twin(layer, args):
    """A stock layer of the same config holding θ = Σ c_i ω_i of `layer`."""
    stock = type(layer.layer).from_config(layer.layer.get_config())
    stock(*args)
    theta = layer.combined_weights()
    for variable, value in zip(stock.trainable_weights, theta.values()):
        variable.assign(value)
    return stock


@pytest.mark.parametrize("name", list(CASES))
def test_generic_layer_equals_stock_layer_at_theta_and_copy_i_gets_c_i_times_the_gradient(name):
    make, arguments = CASES[name]
    x = sequences()
    args = arguments(tf.constant(x))
    layer = ts.layers.Subspace(make(), num_points=3)
    layer(*args)
    c = np.array([0.2, 0.5, 0.3], "float32")
    layer.set_coefficients(c)
    stock = stock_twin(layer, args)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(*args)))
    grads = tape.gradient(loss, layer.trainable_weights)
    with tf.GradientTape() as tape:
        stock_loss = tf.reduce_sum(tf.square(stock(*args)))
    stock_grads = tape.gradient(stock_loss, stock.trainable_weights)

    np.testing.assert_allclose(loss, stock_loss, rtol=1e-6)
    assert len(grads) == len(stock_grads) == len(stock.trainable_weights)
    for grad, stock_grad in zip(grads, stock_grads):
        for index, ci in enumerate(c):
            np.testing.assert_allclose(grad[index], ci * stock_grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_generic_layer_config_round_trips_and_point_init_gives_equal_copies(name):
    make, arguments = CASES[name]
    args = arguments(tf.constant(sequences()))
    layer = ts.layers.Subspace(make(), num_points=2, init="point")
    layer(*args)
    for copies in layer.subspace_weights.values():
        np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy())
    clone = ts.layers.Subspace.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config() and type(clone.layer) is type(layer.layer)


def test_independent_copies_of_a_custom_layer_are_fresh_draws_of_its_own_initializer():
    layer = ts.layers.Subspace(LayerScale(init_value=2.0), num_points=3)
    layer(np.ones((1, 4000), "float32"))
    copies = [c.numpy() for c in layer.subspace_weights["gamma"]]
    assert not np.allclose(copies[0], copies[1]) and not np.allclose(copies[1], copies[2])
    for copy in copies:  # RandomNormal(2.0, 0.1) for each copy
        assert abs(copy.mean() - 2.0) < 0.01 and abs(copy.std() - 0.1) < 0.01


def test_normalization_inside_a_custom_block_is_flagged_and_left_out_of_cos2():
    block = ts.layers.Subspace(AttentionBlock(), num_points=2)
    block(sequences())
    flags = block.weight_is_normalization
    assert flags["norm/gamma"] and flags["norm/beta"] and not flags["attention/query/kernel"]
    assert not block.is_normalization
    before = float(ts.regularizers.pair_cos2([block], 0, 1))
    for copy in block.subspace_weights["norm/gamma"]:
        copy.assign(np.full(copy.shape, 7.0, "float32"))
    assert float(ts.regularizers.pair_cos2([block], 0, 1)) == pytest.approx(before, abs=1e-9)
    query = block.subspace_weights["attention/query/kernel"][1]
    query.assign(query.numpy() * 0 + 1.0)
    assert float(ts.regularizers.pair_cos2([block], 0, 1)) != pytest.approx(before, abs=1e-6)


def test_dropout_inside_the_wrapped_layer_advances_its_seed_and_batchnorm_updates_statistics():
    attention = ts.layers.Subspace(keras.layers.MultiHeadAttention(2, 4, dropout=0.5), num_points=2)
    x = sequences()
    attention(x, x)
    first, second = attention(x, x, training=True), attention(x, x, training=True)
    assert not np.allclose(first, second)  # a fresh dropout mask each call
    np.testing.assert_allclose(attention(x, x), attention(x, x))

    bn = ts.layers.Subspace(keras.layers.BatchNormalization(momentum=0.0), num_points=2)
    data = RNG.normal(3.0, 2.0, size=(64, 4)).astype("float32")
    bn(data, training=True)
    np.testing.assert_allclose(bn.layer.moving_mean.numpy(), data.mean(0), rtol=1e-5)


def test_kernel_regularizer_applies_to_every_copy_once():
    layer = ts.layers.Subspace(keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.1)), num_points=2)
    layer(np.ones((1, 4), "float32"))
    expected = 0.1 * sum(np.sum(np.square(c.numpy())) for c in layer.subspace_weights["kernel"])
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_freeze_points_after_build_moves_copies_to_a_non_trainable_stack_with_the_same_values():
    layer = ts.layers.Subspace(keras.layers.Dense(3), num_points=4)
    layer(np.ones((2, 5), "float32"))
    values = {key: [c.numpy() for c in copies] for key, copies in layer.subspace_weights.items()}
    layer.freeze_points([0, 3])
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(2, 5, 3), (2, 3)]
    assert sorted(tuple(w.shape) for w in layer.non_trainable_weights) == [(2, 3), (2, 5, 3), (4,)]
    for key, copies in layer.subspace_weights.items():
        for copy, value in zip(copies, values[key]):
            np.testing.assert_array_equal(copy.numpy(), value)
        assert [copy.trainable for copy in copies] == [False, True, True, False]


class ByHand(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = ts.layers.SubspaceDense(8, activation="relu", num_points=3)
        self.attention = ts.layers.Subspace(keras.layers.MultiHeadAttention(2, 4), num_points=3)
        self.out = ts.layers.SubspaceDense(2, num_points=3)

    def call(self, x):
        h = self.hidden(x)
        return self.out(keras.ops.mean(self.attention(h, h), axis=1))


def test_a_subclassed_network_of_ts_layers_trains_and_exports_but_refuses_to_bake(tmp_path):
    model = ts.SubspaceModel(ByHand(), ts.Simplex(3), seed=0)  # before the network is built
    x = sequences((8, 5, 4))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="subclassed and built from ts.layers, so it has no stock twin") as info:
        model.bake([0.2, 0.3, 0.5])
    assert "\n" not in str(info.value)
    before = model.alpha
    path = model.export(str(tmp_path / "served"), alpha=[0.2, 0.3, 0.5])
    assert model.alpha == before  # export leaves the model at its own point
    loaded = tf.saved_model.load(path)  # keep it alive: its variables die with it
    model.set_alpha([0.2, 0.3, 0.5])
    np.testing.assert_allclose(loaded.serve(tf.constant(x)), model(x), atol=1e-5)


def test_summary_says_what_the_subspace_is_and_get_layer_finds_converted_layers():
    inputs = keras.Input((4,))
    base = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Dense(5, name="hidden")(inputs)))
    model = ts.convert(base, ts.Simplex(3), seed=0)
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert lines[0].startswith(
        "Subspace: Simplex(num_vertices=3), m = 3 copies of every trainable weight, 2 subspace layers, "
        f"{4 * 5 + 5 + 5 * 2 + 2:,} trainable parameters per copy"
    )
    assert any("hidden (Subspace)" in line for line in lines)
    assert model.get_layer("hidden") is model.subspace_layers[0]
    assert type(model.get_layer("head").layer) is keras.layers.Dense


@keras.saving.register_keras_serializable(package="tfsubspace_tests")
class LazyBlock(keras.layers.Layer):
    """Makes its sublayer in __init__ and its weights only in the first call: `build` alone
    (as Keras' `build_from_config` runs it on load) leaves it built with no weights."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        pass

    def call(self, x):
        return self.dense(x) * 2.0

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_layer_built_without_weights_gets_its_copies_at_the_first_call_and_round_trips(tmp_path):
    # Reproduces keras-cv's MobileNetV3 squeeze-excite: the saved file did not load ("has no
    # trainable weights to place in a subspace").
    inputs = keras.Input((4,))
    base = keras.Model(inputs, keras.layers.Dense(2)(LazyBlock(name="lazy")(inputs)))
    model = ts.convert(base, ts.Line(), seed=0)
    assert [tuple(w.shape) for w in model.get_layer("lazy").trainable_weights] == [(2, 4, 3), (2, 3)]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model.set_alpha(0.3)
    model.save(tmp_path / "lazy.keras")
    loaded = ts.load_model(tmp_path / "lazy.keras")
    assert loaded.alpha == pytest.approx(0.3)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    np.testing.assert_array_equal(loaded.get_layer("lazy").trainable_weights[0].numpy(),
                                  model.get_layer("lazy").trainable_weights[0].numpy())
