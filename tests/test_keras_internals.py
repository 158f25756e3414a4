"""Pins every Keras behaviour beyond its documented API that tfsubspace relies on.

One test per item of BUILD_NOTES.md "Keras internals we rely on": a Keras
upgrade that changes one of them fails here, in one place, with its name.
"""

import keras
import numpy as np
import tensorflow as tf

import tfsubspace as ts
from tfsubspace.convert import is_graph_model
from tfsubspace.layers import sublayers


def test_flatten_layers_walks_nested_layers_depth_first_including_self():
    # tfsubspace.layers.sublayers: the one walk over a layer's sublayers.
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="inner")
    outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1, name="head")], name="outer")
    names = [
        layer.name for layer in outer._flatten_layers(include_self=True, recursive=True)
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert names == ["outer", "inner", "d", "head"]
    attention = keras.layers.MultiHeadAttention(2, 4, name="mha")
    attention(np.ones((1, 3, 8), "float32"), np.ones((1, 3, 8), "float32"))
    assert {"query", "key", "value", "attention_output"} <= {l.name for l in sublayers(attention)}


def test_plain_functional_models_are_of_class_named_functional():
    # ts.convert tells graph models (rebuilt layer by layer) from subclassed ones by this name.
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert type(functional).__name__ == "Functional" and is_graph_model(functional)

    class Sub(keras.Model):
        def call(self, x):
            return x

    assert not is_graph_model(Sub())


def test_clone_model_passes_graph_operations_to_the_clone_function():
    # convert/bake return operations (`+`, keras.ops calls) unchanged from the clone function.
    inputs = keras.Input((3,))
    outputs = keras.ops.relu(keras.layers.Dense(3)(inputs) + inputs)
    seen = []

    def clone(layer):
        seen.append(type(layer).__name__)
        return layer if not isinstance(layer, keras.layers.Layer) else type(layer).from_config(layer.get_config())

    keras.models.clone_model(keras.Model(inputs, outputs), clone_function=clone)
    assert {"Add", "Relu"} <= set(seen)


def test_stateless_scope_maps_reads_records_assignments_and_collects_losses():
    # Subspace.call runs the inner layer inside keras.StatelessScope.
    variable = keras.Variable(np.zeros(2, "float32"))
    state = keras.Variable(np.zeros(2, "float32"), trainable=False)
    with keras.StatelessScope(
        state_mapping=[(variable, tf.constant([1.0, 2.0]))], collect_losses=True, initialize_variables=False
    ) as scope:
        read = tf.identity(variable)  # any op reading the variable sees the mapped value
        state.assign(read * 3)
        keras.layers.ActivityRegularization(l1=1.0)(read)
    np.testing.assert_array_equal(read, [1.0, 2.0])
    np.testing.assert_array_equal(scope.get_current_value(state), [3.0, 6.0])
    np.testing.assert_array_equal(state.numpy(), [0.0, 0.0])  # untouched until written back
    assert scope.get_current_value(keras.Variable(np.zeros(1, "float32"))) is None
    assert len(scope.losses) == 1


def test_stateless_scope_values_are_autocast_like_the_variables_own_value():
    # Subspace.call maps float32 θ under a mixed policy: the inner layer's reads
    # must see θ cast to its compute dtype (autocast=True) or left float32
    # (autocast=False, e.g. batch-norm gamma), exactly as a stock layer's own read.
    cast = keras.Variable(np.zeros(2, "float32"))
    kept = keras.Variable(np.zeros(2, "float32"), autocast=False)
    theta = tf.constant([1.0, 1.0 / 3.0])
    with keras.src.backend.AutocastScope("float16"):
        scope = keras.StatelessScope(state_mapping=[(cast, theta), (kept, theta)], initialize_variables=False)
    with keras.src.backend.AutocastScope("float16"), scope:
        read_cast, read_kept = cast.value, kept.value
    assert (read_cast.dtype, read_kept.dtype) == (tf.float16, tf.float32)
    np.testing.assert_array_equal(read_cast, tf.cast(theta, tf.float16))
    np.testing.assert_array_equal(read_kept, theta)


def test_trainer_and_saving_read_weights_through_the_layers_own_weights_and_variables():
    # Subspace overrides `weights`/`variables` to hide the inner layer's own
    # trainable variables and show its stacked copies; the trainer must read
    # a model's trainable variables through each sublayer's `variables`.
    layer = ts.layers.Subspace(keras.layers.Dense(2), num_points=2)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    assert [v.name for v in model.trainable_variables] == ["kernel_copies", "bias_copies"]
    assert [v.name for v in model.weights] == ["coefficients", "kernel_copies", "bias_copies"]
    model.compile("sgd", "mse")
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


def test_layer_call_can_be_overridden_to_build_the_inner_layer_first():
    # Subspace.__call__ builds the inner layer (its own shape routing) before Layer.__call__.
    layer = ts.layers.Subspace(keras.layers.MultiHeadAttention(2, 4), num_points=2)
    query, value = keras.Input((3, 8)), keras.Input((5, 8))
    output = layer(query, value)
    assert layer.built and layer.layer.built and tuple(output.shape) == (None, 3, 8)


def test_variable_paths_name_the_layer_that_created_them():
    # Subspace keys its weights by the path below the inner layer ("query/kernel").
    attention = keras.layers.MultiHeadAttention(2, 4, name="att")
    attention(np.ones((1, 3, 8), "float32"), np.ones((1, 3, 8), "float32"))
    assert attention.trainable_weights[0].path.split("/")[-3:] == ["att", "query", "kernel"]


def test_compile_from_config_skips_a_model_that_overrides_compile(tmp_path):
    # SubspaceModel overrides `compile` (ts.metrics read the head there), so it
    # carries its own `compile_from_config`: Keras' version skips such models
    # with a warning and otherwise only compiles and builds the optimizer.
    class Recompiles(keras.Model):
        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)

    model = Recompiles(inputs := keras.Input((3,)), keras.layers.Dense(2)(inputs))
    with np.testing.assert_warns(UserWarning):
        keras.Model.compile_from_config(model, {"optimizer": "sgd", "loss": "mse"})
    assert not model.compiled
    line = ts.convert(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), ts.Line())
    line.compile("adam", "mse", metrics=[ts.metrics.BrierScore()])
    line.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
    line.save(tmp_path / "line.keras")
    loaded = ts.load_model(tmp_path / "line.keras")
    assert loaded.compiled and loaded.optimizer.built
    assert [v.numpy().tolist() for v in loaded.optimizer.variables] == [
        v.numpy().tolist() for v in line.optimizer.variables
    ]


def test_get_input_signature_gives_the_specs_keras_model_export_uses():
    from keras.src.export.export_utils import get_input_signature

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    (spec,) = get_input_signature(model)
    assert tuple(spec.shape) == (None, 4) and spec.dtype == "float32"
