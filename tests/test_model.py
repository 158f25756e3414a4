"""SubspaceModel: sampling in train_step, cos² penalty, inference point, fit/evaluate."""

import keras
import numpy as np
import pytest

import tfsubspace as ts
from conftest import small_cnn, tiny_data


def compiled(model, lr=0.05):
    model.compile(
        keras.optimizers.SGD(lr, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class RecordCoefficients(keras.callbacks.Callback):
    """Reads what each layer used in the batch that just ran."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append(np.stack([l.coefficients.numpy() for l in self.model.subspace_layers]))


def train_and_record(shape, sampling, seed, steps=6):
    x, y = tiny_data(n=16 * steps)
    model = compiled(ts.convert(small_cnn(), shape, sampling=sampling, seed=seed))
    recorder = RecordCoefficients()
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[recorder], verbose=0)
    return model, np.stack(recorder.rows)


def test_per_batch_alpha_is_shared_by_layers_and_changes_every_step():
    model, rows = train_and_record(ts.Line(), "per_batch", seed=1)
    assert rows.shape == (6, 3, 2)
    for step in rows:
        np.testing.assert_array_equal(step, np.broadcast_to(step[0], step.shape))
    alphas = rows[:, 0, 1]
    assert len(set(np.round(alphas, 6))) == len(alphas)


def test_per_layer_alpha_differs_across_layers():
    _, rows = train_and_record(ts.Simplex(3), "per_layer", seed=2)
    for step in rows:
        assert not np.allclose(step[0], step[1]) and not np.allclose(step[1], step[2])
        np.testing.assert_allclose(step.sum(axis=1), 1.0, atol=1e-5)


def test_same_seed_same_alpha_sequence_and_it_is_the_samplers():
    model, first = train_and_record(ts.Bezier(1), "per_batch", seed=7)
    _, second = train_and_record(ts.Bezier(1), "per_batch", seed=7)
    _, other = train_and_record(ts.Bezier(1), "per_batch", seed=8)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)
    for step, row in enumerate(first):
        np.testing.assert_allclose(row, model.sampler.coefficients(step).numpy(), atol=1e-7)


def test_cos2_equals_direct_numpy_over_non_normalization_weights():
    model = ts.convert(small_cnn(), ts.Simplex(4), seed=0)
    copies = [[], [], [], []]
    for layer in model.subspace_layers:
        if layer.is_normalization:
            continue
        for group in layer.subspace_weights.values():
            for i, c in enumerate(group):
                copies[i].append(c.numpy().ravel())
    w = [np.concatenate(parts).astype(np.float64) for parts in copies]
    for j, k in [(0, 1), (2, 3), (3, 0)]:
        expected = np.dot(w[j], w[k]) ** 2 / (np.dot(w[j], w[j]) * np.dot(w[k], w[k]))
        got = float(ts.regularizers.pair_cos2(model.subspace_layers, j, k))
        assert abs(got - expected) < 1e-6 * max(1, expected) + 1e-9


def test_cos2_excludes_batchnorm_parameters():
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    before = float(ts.regularizers.pair_cos2(model.subspace_layers, 0, 1))
    bn = model.network.get_layer("bn")
    for c in bn.subspace_weights["gamma"]:
        c.assign(np.full(c.shape, 3.0, "float32"))
    assert float(ts.regularizers.pair_cos2(model.subspace_layers, 0, 1)) == pytest.approx(before, abs=1e-9)


def test_training_loss_adds_beta_times_cos2_and_logs_it():
    x, y = tiny_data(n=16)
    logs = {}
    for beta in (0.0, 5.0):
        keras.utils.set_random_seed(0)
        model = compiled(ts.convert(small_cnn(), ts.Line(), beta=beta, seed=3), lr=0.0)
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
        logs[beta] = history
    assert set(logs[0.0]) == {"loss", "accuracy", "cos2"}
    cos2 = logs[5.0]["cos2"][0]
    assert cos2 > 0
    np.testing.assert_allclose(logs[5.0]["loss"][0] - logs[0.0]["loss"][0], 5.0 * cos2, rtol=1e-4)


def test_penalty_pushes_endpoints_apart_when_beta_is_large():
    x, y = tiny_data(n=64)
    model = compiled(ts.convert(small_cnn(), ts.Line(), beta=50.0, seed=0, init="point"), lr=0.05)
    assert float(ts.regularizers.pair_cos2(model.subspace_layers, 0, 1)) > 0.99
    model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert float(ts.regularizers.pair_cos2(model.subspace_layers, 0, 1)) < 0.9


def test_set_alpha_fixes_the_inference_point_and_center_is_the_default():
    x, y = tiny_data(n=32)
    model = compiled(ts.convert(small_cnn(), ts.Line(), seed=0))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.alpha == 0.5
    centre = model.predict(x, verbose=0)
    np.testing.assert_allclose(centre, model.bake(0.5)(x), atol=1e-5)
    model.set_alpha(0.0)
    start = model.predict(x, verbose=0)
    np.testing.assert_allclose(start, model.bake(0.0)(x), atol=1e-5)
    assert not np.allclose(start, centre)
    np.testing.assert_allclose(model(x), start, atol=1e-5)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["accuracy"], np.mean(start.argmax(1) == y), atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        model.set_alpha(1.2)


def test_fit_works_with_callbacks_validation_and_tf_data():
    import tensorflow as tf

    x, y = tiny_data(n=64)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = compiled(ts.convert(small_cnn(), ts.PolyChain(1), seed=0))
    history = model.fit(
        train,
        epochs=2,
        validation_data=train,
        callbacks=[keras.callbacks.EarlyStopping(patience=5), keras.callbacks.History()],
        verbose=0,
    ).history
    assert {"loss", "cos2", "accuracy", "val_loss", "val_accuracy"} == set(history)
    assert len(history["loss"]) == 2


def test_learns_a_separable_problem_along_the_whole_line():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 2)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model = compiled(ts.convert(base, ts.Line(), beta=1.0, seed=0), lr=0.05)
    model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    for alpha in (0.0, 0.5, 1.0):
        model.set_alpha(alpha)
        assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] > 0.95


def test_frozen_points_stay_bit_identical_through_fit_and_survive_save(tmp_path):
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                             keras.layers.Dense(3)])
    model = ts.convert(base, ts.Bezier(num_bends=1), beta=1.0, seed=0)
    model.freeze_points([0, 2])
    def copies_now():
        return {(layer.name, key, i): copy.numpy().copy() for layer in model.subspace_layers
                for key, copies in layer.subspace_weights.items() for i, copy in enumerate(copies)}

    before = copies_now()
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9, weight_decay=1e-2), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.arange(64) % 3
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    after = copies_now()
    for (name, key, index), value in before.items():
        if index in (0, 2):
            np.testing.assert_array_equal(after[name, key, index], value)
        else:
            assert not np.array_equal(after[name, key, index], value)
    path = tmp_path / "frozen.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.frozen_points == (0, 2)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)


def test_freeze_points_rejects_indices_outside_the_shape():
    model = ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), ts.Line())
    with pytest.raises(ValueError, match=r"`indices` must be a list of point indices in \[0, 1\]"):
        model.freeze_points([2])


def _train_graph(model, data):
    """The graph of one traced train_step of `model` on the batch `data`."""
    import tensorflow as tf

    model.optimizer.build(model.trainable_variables)
    return tf.function(model.train_step).get_concrete_function(data).graph


def test_cos2_picks_its_pair_once_from_the_summed_gram_matrix_whatever_the_number_of_weights():
    # Per-weight pair picking put ~25 ops per weight in the train graph; their
    # trace time made a simplex's first step several times the standard one.
    x, y = tiny_data(16)
    model = compiled(ts.convert(small_cnn(), ts.Simplex(4), seed=0))
    graph = _train_graph(model, (x, y))
    types = [op.type for op in graph.get_operations()]
    assert len(ts.regularizers.penalized_groups(model.subspace_layers)) == 4
    assert types.count("GatherNd") == 1


def test_a_line_draws_no_pair_and_its_penalty_is_the_cos2_of_its_two_endpoints():
    sampler = ts.Sampler(ts.Line(), num_layers=2, seed=5)
    assert [tuple(int(v) for v in sampler.pair(step)) for step in range(4)] == [(0, 1)] * 4
    model = ts.convert(small_cnn(), ts.Line(), seed=0)
    w = [np.concatenate([group[i].numpy().ravel() for layer in model.subspace_layers if not layer.is_normalization
                         for group in layer.subspace_weights.values()]).astype(np.float64) for i in (0, 1)]
    expected = np.dot(w[0], w[1]) ** 2 / (np.dot(w[0], w[0]) * np.dot(w[1], w[1]))
    assert float(ts.regularizers.pair_cos2(model.subspace_layers, 1, 0)) == pytest.approx(expected, rel=1e-5)
