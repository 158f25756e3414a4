"""`ts.evaluate.shift`: scores per corruption and severity against direct numpy formulas, best α vs a sweep."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts


def numpy_scores(probabilities, labels, num_bins=15):
    """Accuracy, NLL and ECE (equal-width confidence bins, weighted |accuracy - confidence|) by hand."""
    p = np.asarray(probabilities, np.float64)
    predicted, confidence = p.argmax(1), p.max(1)
    correct = predicted == labels
    nll = -np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-300, None)))
    edges = np.linspace(0, 1, num_bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return {"accuracy": correct.mean(), "nll": nll, "ece": ece}


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def corrupted(x, y, severities=(1, 3), seed=0):
    """Two corruptions of our own: additive noise and contrast loss, stronger with severity."""
    rng = np.random.default_rng(seed)
    return {
        "noise": {s: ((x + 0.6 * s * rng.normal(size=x.shape)).astype("float32"), y) for s in severities},
        "contrast": {s: (x / (1.0 + s), y) for s in severities},
    }


def dense_net(activation=None, seed=0):
    """A net that solves `data` (label = argmax of the first 3 features) up to a little random kernel."""
    keras.utils.set_random_seed(seed)
    net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation=activation)])
    kernel = 0.3 * np.random.default_rng(seed).normal(size=(6, 3)) + 2.0 * np.eye(6, 3)
    net.layers[0].kernel.assign(kernel.astype("float32"))
    return net


def data(n=60, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (np.argmax(x[:, :3], 1)).astype("int64")


@pytest.mark.parametrize("head", ["logits", "softmax"])
@pytest.mark.parametrize("one_hot", [False, True])
def test_plain_model_scores_match_numpy_for_logits_and_softmax_heads_and_label_forms(head, one_hot):
    net = dense_net("softmax" if head == "softmax" else None)
    x, y = data()
    sets = corrupted(x, y)
    labelled = {c: {s: (xs, np.eye(3)[ys] if one_hot else ys) for s, (xs, ys) in by.items()} for c, by in sets.items()}
    result = ts.evaluate.shift(net, labelled, clean_data=(x, np.eye(3)[y] if one_hot else y))

    def probabilities(inputs):
        out = net.predict(inputs, verbose=0).astype(np.float64)
        return out if head == "softmax" else softmax(out)

    clean = numpy_scores(probabilities(x), y)
    for key in ("accuracy", "nll", "ece"):
        assert result["clean"][key] == pytest.approx(clean[key], abs=1e-5)
    assert [(r["corruption"], r["severity"]) for r in result] == [("noise", 1), ("noise", 3), ("contrast", 1), ("contrast", 3)]
    for row in result:
        xs, _ = sets[row["corruption"]][row["severity"]]
        expected = numpy_scores(probabilities(xs), y)
        for key in ("accuracy", "nll", "ece"):
            assert row[key] == pytest.approx(expected[key], abs=1e-5), (row, key)
        assert row["relative_change"] == pytest.approx((expected["accuracy"] - clean["accuracy"]) / clean["accuracy"])
    for mean in result["by_severity"]:
        chosen = [row for row in result if row["severity"] == mean["severity"]]
        assert mean["accuracy"] == pytest.approx(np.mean([row["accuracy"] for row in chosen]))
        assert mean["corruptions"] == 2
    # Stronger noise hurts more here (severity 3 has five times the noise of 1).
    noise = {row["severity"]: row["accuracy"] for row in result if row["corruption"] == "noise"}
    assert noise[3] < noise[1]


def line_with_batchnorm():
    keras.utils.set_random_seed(3)
    base = keras.Sequential([keras.Input((6,)), keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    model = ts.convert(base, ts.Line(), seed=0)  # independent endpoints: scores vary along the line
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_line_best_alpha_is_the_argmax_of_a_direct_sweep_and_batch_norm_uses_clean_data():
    model = line_with_batchnorm()
    x, y = data(96)
    train = tf.data.Dataset.from_tensor_slices((x * 2.0 + 1.0, y)).batch(32)  # BN statistics differ from x's
    sets = corrupted(x, y, severities=(2, 3))
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    before_mean = [v.numpy().copy() for v in model.network.layers[0].weights if "moving_mean" in v.path]
    result = ts.evaluate.shift(model, sets, clean_data=(x, y), alphas=alphas, batchnorm_data=train, verbose=0)
    after_mean = [v.numpy() for v in model.network.layers[0].weights if "moving_mean" in v.path]
    np.testing.assert_array_equal(before_mean[0], after_mean[0])  # model left as it was

    clean = ts.evaluate.sweep(model, (x, y), batchnorm_data=train, alphas=alphas, ensemble_pairs=False, verbose=0)
    assert [row["accuracy"] for row in result["clean"]] == pytest.approx([row["accuracy"] for row in clean])
    for corruption in sets:
        direct = ts.evaluate.sweep(model, sets[corruption][3], batchnorm_data=train, alphas=alphas,
                                   ensemble_pairs=False, verbose=0)
        changes = [(d["accuracy"] - c["accuracy"]) / c["accuracy"] for d, c in zip(direct, clean)]
        ours = [row for row in result if row["corruption"] == corruption and row["severity"] == 3]
        assert [row["nll"] for row in ours] == pytest.approx([row["nll"] for row in direct], abs=1e-6)
        assert [row["relative_change"] for row in ours] == pytest.approx(changes)
        best = result["best_alpha"][corruption]
        assert best["alpha"] == alphas[int(np.argmax(changes))]
        assert best["relative_change"] == pytest.approx(max(changes))
    assert result["best_severity"] == 3
    # Averaged over severities instead:
    mean_result = ts.evaluate.shift(model, sets, clean_data=(x, y), alphas=alphas, batchnorm_data=train,
                                    best_severity=None, verbose=0)
    for corruption in sets:
        per_alpha = [np.mean([r["relative_change"] for r in mean_result if r["corruption"] == corruption
                              and r["alpha"] == a]) for a in alphas]
        assert mean_result["best_alpha"][corruption]["alpha"] == alphas[int(np.argmax(per_alpha))]


def test_subspace_model_at_one_point_equals_predict_at():
    model = line_with_batchnorm()
    x, y = data(64)
    train = (x + 0.5, y)
    sets = corrupted(x, y, severities=(5,))
    result = ts.evaluate.shift(model, sets, clean_data=(x, y), alpha=0.25, batchnorm_data=train, verbose=0)
    probabilities, labels = ts.evaluate.predict_at(model, sets["noise"][5], alpha=0.25, batchnorm_data=train)
    expected = numpy_scores(probabilities, labels)
    assert result[0]["corruption"] == "noise" and result[0]["accuracy"] == pytest.approx(expected["accuracy"])
    assert result[0]["nll"] == pytest.approx(expected["nll"], abs=1e-6)
    assert result["alpha"] == 0.25 and "best_alpha" not in result
    # Without alpha: the model where it stands (placed at 0.25 above), batch norm as it is.
    ts.evaluate.place(model, alpha=0.25, batchnorm_data=train)
    here = ts.evaluate.shift(model, sets, clean_data=(x, y), verbose=0)
    assert here[0]["accuracy"] == pytest.approx(result[0]["accuracy"]) and here[0]["nll"] == pytest.approx(result[0]["nll"])


def test_tf_data_corrupted_sets_are_accepted():
    net = dense_net()
    x, y = data()
    sets = {"noise": {1: tf.data.Dataset.from_tensor_slices((x + 0.1, y)).batch(16)}}
    result = ts.evaluate.shift(net, sets, clean_data=tf.data.Dataset.from_tensor_slices((x, y)).batch(7))
    assert result[0]["accuracy"] == pytest.approx(numpy_scores(softmax(net.predict(x + 0.1, verbose=0)), y)["accuracy"])


@pytest.mark.parametrize(
    "sets, kwargs, message",
    [
        ({}, {}, "`corrupted_sets` must be a non-empty mapping"),
        ([("noise", {1: None})], {}, "`corrupted_sets` must be a non-empty mapping"),
        ({"noise": {}}, {}, "`corrupted_sets['noise']` must be a non-empty mapping {severity: data}"),
        ({"noise": {0: "d"}}, {}, "`corrupted_sets['noise']` severities must be an integer in [1, 5], got 0."),
        ({"noise": {"3": "d"}}, {}, "`corrupted_sets['noise']` severities must be an integer in [1, 5], got '3'."),
        ({3: {1: "d"}}, {}, "`corrupted_sets` keys must be corruption names"),
        ({"noise": {1: "d"}}, {"alpha": 0.5, "alphas": [0.5]}, "`alpha` and `alphas` are exclusive"),
        ({"noise": {1: "d"}}, {"alphas": [0.5], "best_severity": 3},
         "`best_severity` must be a severity every corruption has, or None (mean over severities); 3 is missing"),
        ({"noise": {1: "d"}}, {"alphas": [0.5], "best_severity": 9}, "`best_severity` must be an integer in [1, 5]"),
        ({"noise": {1: "d"}}, {"alphas": [1.5]}, "alphas"),
        ({"noise": {3: "d"}}, {"alphas": [0.5]}, "`batchnorm_data` is required"),
    ],
)
def test_bad_arguments_fail_in_one_line(sets, kwargs, message):
    model = line_with_batchnorm()
    with pytest.raises(ValueError) as error:
        ts.evaluate.shift(model, sets, clean_data=data(), **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_plain_model_refuses_points():
    with pytest.raises(ValueError, match="must be a ts.SubspaceModel"):
        ts.evaluate.shift(dense_net(), {"noise": {1: data()}}, clean_data=data(), alphas=[0.5])


# ---------------------------------------------------------------- the binary with config.eval.shift


def test_binary_scores_a_line_under_shift_from_a_cache_filled_by_hand(tmp_path):
    """Runs without the generator extra: the sets are ours, written in the cache format (checksums and all)."""
    import json

    import conftest

    from tfsubspace import data
    from tfsubspace.data import corrupted as corrupted_data

    examples, cache = 48, tmp_path / "cache"
    _, (x_test, y_test) = data.load_arrays("fashion_mnist")
    x, y = x_test[:examples], y_test[:examples]
    directory = corrupted_data.cache_directory(cache, x, y, seed=0)
    padded = corrupted_data.pad(x).astype(np.int64)
    rng = np.random.default_rng(0)
    ours = {
        ("gaussian_noise", 1): padded + rng.normal(0, 20, padded.shape),
        ("gaussian_noise", 3): padded + rng.normal(0, 90, padded.shape),
        ("contrast", 1): padded * 0.7,
        ("contrast", 3): padded * 0.2,
    }
    ours = {key: np.clip(v, 0, 255).astype(np.uint8) for key, v in ours.items()}
    for (corruption, severity), images in ours.items():
        corrupted_data.save_set(directory, corruption, severity, images, y)
    workdir = tmp_path / "run"
    conftest.run_binary(
        "fashion_mnist_line.py", workdir, "--config.train.epochs=1", "--config.train.warmup_epochs=0",
        "--config.dataset.train_subset=512", "--config.model.name=mlp", "--config.train.standard_baseline=True",
        "--config.eval.alphas=(0.0, 0.5, 1.0)", "--config.eval.export=False",
        "--config.eval.shift.enabled=True", "--config.eval.shift.corruptions=('gaussian_noise', 'contrast')",
        "--config.eval.shift.severities=(1, 3)", f"--config.eval.shift.examples={examples}",
        f"--config.eval.shift.cache_dir={cache}",
    )
    shift = json.loads((workdir / "results.json").read_text())["shift"]
    assert shift["corruptions"] == ["gaussian_noise", "contrast"] and shift["best_severity"] == 3
    assert [c["alpha"] for c in shift["clean"]] == [0.0, 0.5, 1.0]
    # The same numbers from the saved model on our arrays, preprocessed by hand (crop 32 -> 28, normalize).
    model = keras.models.load_model(workdir / "model.keras")
    info = data.DATASET_INFO["fashion_mnist"]
    changes = {}
    for clean in shift["clean"]:
        model.set_alpha(clean["alpha"])
        # The clean accuracy is on the same 48 examples, not on the whole test set.
        clean_inputs = (x.astype("float32") / 255.0 - info.mean[0]) / info.std[0]
        clean_accuracy = np.mean(np.argmax(model.predict(clean_inputs, verbose=0), 1) == y)
        assert clean["accuracy"] == pytest.approx(clean_accuracy)
        for (corruption, severity), images in ours.items():
            inputs = (images[:, 2:30, 2:30].astype("float32") / 255.0 - info.mean[0]) / info.std[0]
            accuracy = np.mean(np.argmax(model.predict(inputs, verbose=0), 1) == y)
            row = next(r for r in shift["rows"] if r["alpha"] == clean["alpha"] and r["corruption"] == corruption
                       and r["severity"] == severity)
            assert row["accuracy"] == pytest.approx(accuracy), (corruption, severity)
            assert row["relative_change"] == pytest.approx((accuracy - clean_accuracy) / clean_accuracy)
            if severity == 3:
                changes.setdefault(corruption, []).append(row["relative_change"])
    for corruption, values in changes.items():
        assert shift["best_alpha"][corruption]["alpha"] == [0.0, 0.5, 1.0][int(np.argmax(values))]
    # The standard model of the run, on the same sets; models never reach results.json.
    standard = shift["references"]["standard"]
    assert [(r["corruption"], r["severity"]) for r in standard["rows"]] == [(r["corruption"], r["severity"])
                                                                           for r in shift["rows"] if r["alpha"] == 0.0]
    for row in standard["rows"]:
        assert row["relative_change"] == pytest.approx((row["accuracy"] - standard["clean"]["accuracy"])
                                                       / standard["clean"]["accuracy"])
    assert "shift_references" not in json.loads((workdir / "results.json").read_text())
    assert (workdir / "shift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (workdir / "results.md").read_text()
    assert "Dataset shift (fashion_mnist_c, 48 examples per set)" in report and "| contrast | α = " in report
    assert "| standard | " in report and "standard: relative change |" in report


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("source", "mnist_c", "config.eval.shift.source must be one of ('fashion_mnist_c', 'cifar10_corrupted'"),
        ("corruptions", ("fog", "rain"), "config.eval.shift.corruptions must be empty or None (all), or distinct names"),
        ("severities", (0, 1), "config.eval.shift.severities entries must be an integer in [1, 5], got 0."),
        ("severities", (), "config.eval.shift.severities must be a non-empty list"),
        ("examples", 0, "config.eval.shift.examples must be an integer >= 1 or None, got 0."),
        ("best_severity", 4, "config.eval.shift.best_severity must be one of config.eval.shift.severities (1, 2, 3)"),
        ("seed", -1, "config.eval.shift.seed must be an integer in [0, 2**31 - 2], got -1."),
    ],
)
def test_bad_shift_config_values_fail_in_one_line(key, value, message):
    from tfsubspace import config as config_lib

    config = config_lib.base_config()
    config.eval.shift.severities = (1, 2, 3)
    config.eval.shift[key] = value
    with pytest.raises(ValueError) as error:
        config_lib.validate(config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_shift_source_must_match_the_dataset():
    from tfsubspace import config as config_lib

    config = config_lib.base_config()
    config.eval.shift.enabled = True
    config.eval.shift.source = "cifar10_corrupted"
    with pytest.raises(ValueError, match=r"needs dataset.name='cifar10', got 'fashion_mnist'"):
        config_lib.validate(config)
    config.eval.shift.source = "imagenet2012_corrupted"
    with pytest.raises(ValueError, match="needs an ImageNet model"):
        config_lib.validate(config)
    config.dataset.name = "cifar10"
    config.eval.shift.source = "cifar10_corrupted"
    assert config_lib.validate(config) is config


def test_binary_shift_step_scores_a_plain_model_and_the_report_plots_it(tmp_path):
    """experiments.shift.run on a standard (plain Keras) model, then the report's shift.png and table."""
    from tfsubspace import config as config_lib
    from tfsubspace import data, reporting
    from tfsubspace.data import corrupted as corrupted_data
    from tfsubspace.experiments import shift as shift_experiment

    examples = 16
    _, (x_test, y_test) = data.load_arrays("fashion_mnist")
    x, y = x_test[:examples], y_test[:examples]
    info = data.DATASET_INFO["fashion_mnist"]
    datasets = data.from_arrays((x, y), (x_test[:40], y_test[:40]), batch_size=8, eval_batch_size=8, num_classes=10,
                                mean=info.mean, std=info.std)
    directory = corrupted_data.cache_directory(tmp_path, x, y, seed=0)
    ours = {s: np.clip(corrupted_data.pad(x).astype(int) // s, 0, 255).astype(np.uint8) for s in (1, 2)}
    for severity, images in ours.items():
        corrupted_data.save_set(directory, "brightness", severity, images, y)
    config = config_lib.base_config()
    config.eval.batch_size = 8
    config.eval.shift.update(enabled=True, corruptions=("brightness",), severities=(1, 2), examples=examples,
                             cache_dir=str(tmp_path), best_severity=None)
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")],
                           name="plain")
    result = shift_experiment.run(config, datasets, net)
    assert result["model"] == "plain" and "best_alpha" not in result

    def accuracy(images):
        inputs = (images.astype("float32") / 255.0 - info.mean[0]) / info.std[0]
        return np.mean(np.argmax(net.predict(inputs, verbose=0), 1) == y)

    assert result["clean"]["accuracy"] == pytest.approx(accuracy(x))  # the 16 examples, not the 40 of datasets.test
    for row in result["rows"]:
        assert row["accuracy"] == pytest.approx(accuracy(ours[row["severity"]][:, 2:30, 2:30]))
    paths = reporting.report({"standard": {"test_accuracy": 0.5, "test_nll": 1.0, "test_ece": 0.1}, "shift": result},
                             tmp_path / "report", title="t")
    assert open(paths["shift_plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "| plain | " in (tmp_path / "report" / "results.md").read_text()
