"""Property test: `ts.convert` is right or refuses, on random small Keras models.

Hypothesis draws a small Sequential model or a functional graph with branches
(Dense, Conv2D, BatchNormalization, LayerNormalization, Dropout, Activation,
Add, Concatenate, Flatten, GlobalAveragePooling2D, nested Sequential blocks,
frozen layers, sometimes a PReLU (no named subspace class: it goes through the
generic `ts.layers.Subspace`), or no weighted layer at all), randomises every weight and batch-norm
statistic, and checks that `ts.convert(model, shape, init="point")` either

- refuses it, exactly when it should, with the one-line ValueError naming the
  problem; or
- gives a SubspaceModel that (a) at several α (a grid on curves; vertices,
  center and random Dirichlet points on a simplex) computes what the source
  model computes in inference mode (all endpoints hold the source weights),
  as does `bake(α)`, and (b) trains one step of `fit` (8 examples, one batch)
  with a finite loss, with per-batch or per-layer sampling.

Deterministic (derandomize=True): the same 100 examples on every run.
"""

import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tfsubspace as ts

NUM_EXAMPLES = int(os.environ.get("TFSUBSPACE_FUZZ_EXAMPLES", "100"))
ATOL = RTOL = 1e-5
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
SHAPES = (
    ("line", lambda: ts.Line()),
    ("bezier1", lambda: ts.Bezier(num_bends=1)),
    ("bezier2", lambda: ts.Bezier(num_bends=2)),
    ("polychain1", lambda: ts.PolyChain(num_bends=1)),
    ("simplex3", lambda: ts.Simplex(num_vertices=3)),
)

# ---------------------------------------------------------------- random model specs


class _Choices:
    """The strategy calls the spec builder makes, answered by a seeded numpy generator."""

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def integers(self, low, high):
        return int(self._rng.integers(low, high + 1))

    def booleans(self):
        return bool(self._rng.integers(2))

    def sampled_from(self, options):
        return options[int(self._rng.integers(len(options)))]

#
# A spec is plain data, so hypothesis can print and shrink it: the input shape
# and a list of ops, each reading earlier nodes (node 0 is the input) and
# adding one node. Shapes are tracked while drawing so every graph is valid.


def _unary_op(r, shape, weightless):
    """One new layer that maps a node of `shape`; returns (op, output shape)."""
    if len(shape) == 3:
        kinds = ["conv", "conv", "batchnorm", "conv", "dense", "layernorm", "activation", "dropout", "nested",
                 "conv", "flatten", "gap"]
    else:
        kinds = ["dense", "batchnorm", "layernorm", "activation", "dropout", "nested"]
    if weightless:
        kinds = [kind for kind in kinds if kind in ("activation", "dropout", "flatten", "gap")]
    kind = r.sampled_from(kinds)
    frozen = kind in ("dense", "conv", "batchnorm", "layernorm") and r.integers(0, 5) == 0
    if kind == "dense":
        units = r.integers(1, 5)
        return {"kind": kind, "units": units, "use_bias": r.booleans(), "frozen": frozen}, (*shape[:-1], units)
    if kind == "nested":
        units = r.integers(1, 4)
        return {"kind": kind, "units": units, "activation": r.sampled_from(ACTIVATIONS)}, (*shape[:-1], units)
    if kind == "conv":
        height, width, _ = shape
        kernel = r.integers(1, 3)
        padding = r.sampled_from(["same", "valid"]) if min(height, width) >= kernel else "same"
        strides = r.sampled_from([1, 1, 2])
        filters = r.integers(1, 4)
        op = {"kind": kind, "filters": filters, "kernel": kernel, "padding": padding, "strides": strides,
              "use_bias": r.booleans(), "frozen": frozen}
        if padding == "valid":
            height, width = height - kernel + 1, width - kernel + 1
        return op, (-(-height // strides), -(-width // strides), filters)
    if kind in ("batchnorm", "layernorm"):
        return {"kind": kind, "center": r.booleans(), "scale": r.booleans(), "frozen": frozen}, shape
    if kind == "dropout":
        return {"kind": kind, "rate": r.sampled_from([0.1, 0.5])}, shape
    if kind == "activation":
        return {"kind": kind, "activation": r.sampled_from(ACTIVATIONS)}, shape
    if kind == "flatten":
        return {"kind": kind}, (int(np.prod(shape)),)
    if kind == "gap":
        return {"kind": kind}, (shape[-1],)
    return {"kind": "prelu"}, shape


@st.composite
def model_specs(draw):
    image = draw(st.booleans())
    if image:
        input_shape = (draw(st.integers(3, 5)), draw(st.integers(3, 5)), draw(st.integers(1, 3)))
    else:
        input_shape = (draw(st.integers(1, 6)),)
    # Hypothesis picks the input; everything else comes from a numpy generator
    # seeded by hypothesis. Drawn through hypothesis strategies, the graphs came
    # out as near-copies of a few one- or two-layer models (its mutations and
    # small-value bias), with Add, shared layers, deep stacks and simplexes
    # rare. The seed, printed with a failing spec, replays it.
    r = _Choices(draw(st.integers(0, 2**32 - 1)))
    functional = r.booleans()
    # ~1/8 end in a PReLU (converted by the generic wrapper); ~1/16 have no
    # weighted layer at all, which must be refused.
    unsupported = r.integers(0, 7) == 0
    weightless = r.integers(0, 15) == 0
    shapes = [input_shape]  # of every node; node 0 is the input
    ops = []
    for _ in range(r.integers(1, 6)):
        choice = r.sampled_from(["merge", "layer", "reuse", "layer"]) if functional and len(shapes) > 1 else "layer"
        if choice == "merge":
            same = [(i, j) for i in range(1, len(shapes)) for j in range(len(shapes)) if i != j and shapes[i] == shapes[j]]
            concatenable = [
                (i, j) for i in range(1, len(shapes)) for j in range(len(shapes))
                if i != j and len(shapes[i]) == len(shapes[j]) and shapes[i][:-1] == shapes[j][:-1]
            ]
            if same and r.booleans():
                first, second = r.sampled_from(same)
                ops.append({"kind": "add", "inputs": [first, second]})
                shapes.append(shapes[first])
                continue
            if concatenable:
                first, second = r.sampled_from(concatenable)
                ops.append({"kind": "concat", "inputs": [first, second]})
                shapes.append((*shapes[first][:-1], shapes[first][-1] + shapes[second][-1]))
                continue
        if choice == "reuse":
            # A shared layer: call an existing layer again on another node of its input shape.
            candidates = [
                (j, i) for j, op in enumerate(ops) if "input_shape" in op
                for i, s in enumerate(shapes) if s == op["input_shape"] and i != op["inputs"][0]
            ]
            if candidates:
                layer_op, node = r.sampled_from(candidates)
                ops.append({"kind": "reuse", "layer_op": layer_op, "inputs": [node]})
                shapes.append(shapes[ops[layer_op]["output_node"]])
                continue
        source = r.integers(0, len(shapes) - 1) if functional else len(shapes) - 1
        op, shape = _unary_op(r, shapes[source], weightless)
        op.update(inputs=[source], input_shape=shapes[source], output_node=len(shapes))
        ops.append(op)
        shapes.append(shape)
    if unsupported:
        ops.append({"kind": "prelu", "inputs": [len(shapes) - 1], "input_shape": shapes[-1], "output_node": len(shapes)})
        shapes.append(shapes[-1])
    # The last node is the output (other branches may dangle: Keras drops them),
    # then a head, unless the draw leaves the model without one; functional
    # models sometimes also output an inner node.
    head = not weightless and r.integers(0, 14) != 0  # ~7% have no head
    second_output = None
    if functional and len(shapes) > 2 and r.integers(0, 3) == 0:
        second_output = r.integers(1, len(shapes) - 2)
    return {
        "input_shape": input_shape,
        "functional": functional,
        "ops": ops,
        "output": len(shapes) - 1,
        "output_rank": len(shapes[-1]),
        "second_output": second_output,
        "head_units": r.integers(1, 4) if head else None,
        "flatten_head": r.booleans(),
        "shape": r.sampled_from([name for name, _ in SHAPES]),
        "sampling": r.sampled_from(["per_batch", "per_layer"]),
        "beta": r.sampled_from([0.0, 1.0]),
        # A quarter compile train_step (tracing costs ~0.5 s); the rest fit eagerly.
        "compiled_fit": r.integers(0, 3) == 0,
        "seed": r.integers(0, 2**16),
    }


# ---------------------------------------------------------------- building


def _layer(op):
    kind = op["kind"]
    if kind == "dense":
        layer = keras.layers.Dense(op["units"], use_bias=op["use_bias"])
    elif kind == "conv":
        layer = keras.layers.Conv2D(
            op["filters"], op["kernel"], strides=op["strides"], padding=op["padding"], use_bias=op["use_bias"]
        )
    elif kind == "batchnorm":
        layer = keras.layers.BatchNormalization(center=op["center"], scale=op["scale"])
    elif kind == "layernorm":
        layer = keras.layers.LayerNormalization(center=op["center"], scale=op["scale"])
    elif kind == "dropout":
        layer = keras.layers.Dropout(op["rate"])
    elif kind == "activation":
        layer = keras.layers.Activation(op["activation"])
    elif kind == "flatten":
        layer = keras.layers.Flatten()
    elif kind == "gap":
        layer = keras.layers.GlobalAveragePooling2D()
    elif kind == "prelu":
        layer = keras.layers.PReLU()
    elif kind == "nested":
        layer = keras.Sequential(
            [keras.Input(op["input_shape"]), keras.layers.Dense(op["units"]), keras.layers.Activation(op["activation"])]
        )
    else:
        raise AssertionError(kind)
    if op.get("frozen"):
        layer.trainable = False
    return layer


def build_model(spec):
    """The stock Keras model of `spec`, with every weight and statistic random."""
    keras.utils.set_random_seed(spec["seed"])
    head = []
    if spec["head_units"] is not None:
        if spec["output_rank"] == 3:
            head.append(keras.layers.Flatten() if spec["flatten_head"] else keras.layers.GlobalAveragePooling2D())
        head.append(keras.layers.Dense(spec["head_units"]))
    if not spec["functional"]:
        layers = [_layer(op) for op in spec["ops"]]
        model = keras.Sequential([keras.Input(spec["input_shape"]), *layers, *head], name="fuzz_sequential")
    else:
        inputs = keras.Input(spec["input_shape"])
        nodes, layers = [inputs], {}
        for index, op in enumerate(spec["ops"]):
            args = [nodes[i] for i in op["inputs"]]
            if op["kind"] == "add":
                nodes.append(keras.layers.Add()(args))
            elif op["kind"] == "concat":
                nodes.append(keras.layers.Concatenate()(args))
            elif op["kind"] == "reuse":
                nodes.append(layers[op["layer_op"]](args[0]))
            else:
                layers[index] = _layer(op)
                nodes.append(layers[index](args[0]))
        x = nodes[spec["output"]]
        for layer in head:
            x = layer(x)
        outputs = x if spec["second_output"] is None else [x, nodes[spec["second_output"]]]
        model = keras.Model(inputs, outputs, name="fuzz_functional")
    randomize_weights(model, np.random.default_rng(spec["seed"]))
    return model


def randomize_weights(model, rng):
    """Non-trivial values everywhere, so a weight that is not carried over shows."""
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in variable.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.5, shape)
        variable.assign(value.astype(variable.dtype))


def expected_refusal(model):
    """The message ts.convert must refuse `model` with, or None if it must convert it."""
    if not model.trainable_weights:
        return r"has no trainable weights"
    return None


def as_list(outputs):
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def assert_all_close(outputs, expected, what):
    outputs = as_list(outputs)
    assert len(outputs) == len(expected), what
    for output, target in zip(outputs, expected):
        np.testing.assert_allclose(output, target, atol=ATOL, rtol=RTOL, err_msg=what)


def points(shape, rng):
    if shape.alpha_rank == 0:
        return [0.0, 0.3, 0.5, 1.0]
    vertices = np.eye(shape.num_points).tolist()
    random_points = rng.dirichlet(np.ones(shape.num_points), size=2)
    random_points = (random_points / random_points.sum(axis=1, keepdims=True)).tolist()
    return [shape.center, *vertices, *random_points]


# ---------------------------------------------------------------- the property

_EXAMPLES_RUN = []


@settings(
    max_examples=NUM_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(spec=model_specs())
def test_convert_is_exact_at_every_alpha_and_trains_or_refuses_clearly(spec):
    # Reset Keras' global state every example (cheap); collect garbage now and
    # then (a full gc costs ~0.2 s, more than a whole example).
    _EXAMPLES_RUN.append(None)
    keras.backend.clear_session(free_memory=len(_EXAMPLES_RUN) % 25 == 0)
    source = build_model(spec)
    rng = np.random.default_rng(spec["seed"])
    x = rng.normal(size=(8, *spec["input_shape"])).astype("float32")
    expected = as_list(source(x, training=False))
    shape = dict(SHAPES)[spec["shape"]]()

    refusal = expected_refusal(source)
    kinds = sorted({op["kind"] for op in spec["ops"]} | ({"two outputs"} if spec["second_output"] else set()))
    event("functional" if spec["functional"] else "sequential")
    event(f"shape={spec['shape']}")
    for kind in kinds:
        event(f"has {kind}")
    if any(op.get("frozen") for op in spec["ops"]):
        event("has a frozen layer")
    event("refused" if refusal else ("converted, compiled fit" if spec["compiled_fit"] else "converted, eager fit"))
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal) as info:
            ts.convert(source, shape, init="point", seed=0)
        assert "\n" not in str(info.value)
        return

    model = ts.convert(source, shape, beta=spec["beta"], sampling=spec["sampling"], seed=0, init="point")
    stock_weighted = [
        layer for layer in source._flatten_layers(include_self=False)
        if layer.trainable_weights and not isinstance(layer, keras.Model)
    ]
    assert len(model.subspace_layers) == len(stock_weighted)

    # (a) Every endpoint holds the source weights: every α gives the source model.
    alphas = points(shape, rng)
    for alpha in alphas:
        model.set_alpha(alpha)
        assert_all_close(model(x, training=False), expected, f"alpha={alpha}")
    assert_all_close(model.bake(alphas[-1])(x, training=False), expected, "bake")

    # (b) One training step through fit, with the model's own sampler.
    y = [rng.normal(size=e.shape).astype("float32") for e in expected]
    y = y[0] if len(y) == 1 else y
    model.compile(keras.optimizers.SGD(0.01), "mse", run_eagerly=not spec["compiled_fit"])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.all(np.isfinite(w.numpy())) for w in model.trainable_weights)
