"""Dataset shift in the binary: the trained model under config.eval.shift's corrupted test sets.

Runs after any method when `config.eval.shift.enabled`: loads (or generates
and caches) the corrupted sets, preprocesses them as the clean test set
(centre crop or zero pad to the model's input, /255, the dataset's mean and
std), and scores them with `ts.evaluate.shift`: a SubspaceModel at the
binary's evaluation points (the config's α grid on a curve; centre and
vertices on a simplex), with the best α per corruption; any other model as it
is (its batch norm as the method left it). The clean accuracy a of the
relative change is measured on the same first `eval.shift.examples` test
images the corrupted sets were made from (CIFAR-10-C: tfds' test order of
both datasets), not on the whole test set.

>>> import numpy as np
>>> to_inputs = preprocess((28, 28, 1), mean=(0.5,), std=(0.5,))
>>> x = to_inputs(np.full((2, 32, 32, 1), 255, np.uint8))
>>> tuple(x.shape), float(x[0, 0, 0, 0])
((2, 28, 28, 1), 1.0)
"""

import os

import numpy as np

from tfsubspace.experiments import subspace as subspace_experiment

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "tfsubspace", "corrupted")


def preprocess(input_shape, mean=None, std=None):
    """uint8 image batches -> the model's float inputs, as the clean test pipeline makes them."""
    import tensorflow as tf

    height, width = input_shape[:2]

    def to_inputs(images):
        images = tf.image.resize_with_crop_or_pad(tf.convert_to_tensor(images), height, width)
        images = tf.cast(images, tf.float32) * (1.0 / 255.0)
        if mean is not None:
            images = (images - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
        return images

    return to_inputs


def load_sets(config):
    """{corruption: {severity: uint8 arrays or tf.data batches}} of config.eval.shift."""
    from tfsubspace.data import corrupted

    shift = config.eval.shift
    options = dict(corruptions=shift.corruptions or None, severities=tuple(shift.severities), examples=shift.examples)
    if shift.source == "fashion_mnist_c":
        cache_dir = os.path.expanduser(shift.cache_dir or DEFAULT_CACHE_DIR)
        return corrupted.fashion_mnist_c(cache_dir, seed=shift.seed, data_dir=config.dataset.data_dir, **options)
    return corrupted.cifar10_corrupted(data_dir=config.dataset.data_dir, batch_size=config.eval.batch_size, **options)


def prepared(sets, datasets, config):
    """The sets as (x, y) batches of model inputs."""
    import tensorflow as tf

    from tfsubspace.data import DATASET_INFO

    info = DATASET_INFO[config.dataset.name]
    to_inputs = preprocess(datasets.input_shape, info.mean, info.std)
    result = {}
    for corruption, by_severity in sets.items():
        for severity, data in by_severity.items():
            if not isinstance(data, tf.data.Dataset):
                data = tf.data.Dataset.from_tensor_slices(data).batch(config.eval.batch_size)
            result.setdefault(corruption, {})[severity] = data.map(lambda x, y: (to_inputs(x), y))
    return result


def markdown(result):
    """The shift section of results.md: mean accuracy over corruptions per severity, and best α per corruption."""
    severities = result["severities"]
    header = ["point", "clean", *[f"severity {s}" for s in severities], "mean relative change"]
    lines = [f"Dataset shift ({result['source']}, {result['examples']} examples per set): test accuracy, mean over "
             f"{len(result['corruptions'])} corruptions", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for name, clean, means in _lines(result):
        by = {row["severity"]: row for row in means}
        change = np.mean([row["relative_change"] for row in means])
        lines.append("| " + " | ".join([name, f"{clean['accuracy']:.4f}", *[f"{by[s]['accuracy']:.4f}" for s in severities],
                                         f"{change:+.4f}"]) + " |")
    if "best_alpha" in result:
        at = f"severity {result['best_severity']}" if result["best_severity"] else "the mean over severities"
        names = list(result.get("references", {}))
        lines += ["", f"Best α per corruption by relative change (b − a)/a at {at} (chosen on the test data, 000 §G)",
                  "", "| corruption | best α | relative change | accuracy |" + "".join(f" {n}: relative change |" for n in names),
                  "|---|---|---|---|" + "---|" * len(names)]
        for corruption, best in result["best_alpha"].items():
            others = "".join(f" {_relative_change(result['references'][n], corruption, result['best_severity']):+.4f} |"
                             for n in names)
            lines.append(f"| {corruption} | {_point_name(best['alpha'])} | {best['relative_change']:+.4f} | "
                         f"{best['accuracy']:.4f} |{others}")
    return "\n".join(lines)


def _relative_change(reference, corruption, severity):
    """A reference model's relative change on `corruption` at `severity` (None: mean over severities)."""
    rows = [row for row in reference["rows"] if row["corruption"] == corruption
            and (severity is None or row["severity"] == severity)]
    return float(np.mean([row["relative_change"] for row in rows]))


def _point_name(alpha):
    if isinstance(alpha, (list, tuple)):
        return "α = [" + ", ".join(f"{a:.2f}" for a in alpha) + "]"
    return f"α = {alpha:.2f}"


def _lines(result):
    """(name, clean scores, per-severity means) for each model or point of a shift result."""
    references = [(name, ref["clean"], ref["by_severity"]) for name, ref in result.get("references", {}).items()]
    if isinstance(result["clean"], dict):
        return [(result["model"], result["clean"], result["by_severity"])] + references
    return [(_point_name(clean["alpha"]), clean, [row for row in result["by_severity"] if row["alpha"] == clean["alpha"]])
            for clean in result["clean"]] + references


def run(config, datasets, model, references=None):
    """The results entry "shift" of `model` (see the module docstring).

    `references` ({name: plain Keras model}, e.g. the standard model a
    subspace run also trained) are scored on the same sets, as they are,
    under `result["references"][name]`.
    """
    from tfsubspace import evaluate
    from tfsubspace.model import SubspaceModel

    shift = config.eval.shift
    sets = prepared(load_sets(config), datasets, config)
    # a of (b - a)/a on the same examples as the corrupted sets: the first `examples` test images.
    clean = datasets.test
    if shift.examples is not None:
        clean = clean.unbatch().take(shift.examples).batch(config.eval.batch_size)
    if isinstance(model, SubspaceModel):
        points = subspace_experiment.evaluation_points(model.subspace_shape, config)
        best = shift.best_severity if shift.best_severity in tuple(shift.severities) else None
        table = evaluate.shift(model, sets, clean_data=clean, alphas=points, batchnorm_data=datasets.train_eval,
                               batchnorm_steps=config.eval.batchnorm_steps, best_severity=best, verbose=1)
        name = "subspace"
    else:
        table = evaluate.shift(model, sets, clean_data=clean, verbose=1)
        name = model.name
    result = {"source": shift.source, "model": name, "corruptions": list(sets), "severities": sorted(shift.severities),
              "examples": shift.examples, **table.to_dict()}
    if references:
        result["references"] = {reference: evaluate.shift(other, sets, clean_data=clean, verbose=1).to_dict()
                                for reference, other in references.items()}
    result["markdown"] = [markdown(result)]
    return result
