"""One reader of evaluation data: tf.data, numpy tuples, dicts; sparse or one-hot labels.

`batches(data)` turns any accepted input into a tf.data.Dataset of (x, y)
batches, refusing data without labels in one line:

- a tf.data.Dataset of (x, y) or (x, y, sample_weight) batches (weights are
  not used), or of dicts holding a "label" (or "labels", "y", "target") key
  next to the inputs;
- an (x, y) or (x, y, w) tuple of arrays (x may be a dict of arrays);
- a dict of arrays with one of those label keys.

`sparse_labels(y, num_classes)` turns labels into class indices: integer
labels of shape [N] or [N, 1], or one-hot (or soft) rows [N, C], checked to
lie in [0, C).

Example:

>>> import numpy as np
>>> from tfsubspace.evaluation import reader
>>> data = reader.batches((np.zeros((5, 2), "float32"), np.eye(3)[[0, 1, 2, 1, 0]]), batch_size=2)
>>> labels = np.concatenate([y for _, y in data.as_numpy_iterator()])
>>> reader.sparse_labels(labels, 3).tolist()
[0, 1, 2, 1, 0]
"""


import numpy as np
import tensorflow as tf

from tfsubspace import checks

LABEL_KEYS = ("label", "labels", "y", "target")


def check_int(value, name, minimum, allow_none=False):
    """`checks.integer` for the argument `name` of an evaluation function (numpy integers accepted)."""
    return checks.integer(value, f"`{name}`", minimum=minimum, allow_none=allow_none)


def _label_key(mapping):
    return next((key for key in LABEL_KEYS if key in mapping), None)


def _split_dict(element, key):
    features = {k: v for k, v in element.items() if k != key}
    x = next(iter(features.values())) if len(features) == 1 else features
    return x, element[key]


def _refuse_iterators(data, name):
    if hasattr(data, "__next__") or (hasattr(data, "__iter__") and not isinstance(data, (tuple, list, dict))):
        raise ValueError(
            f"`{name}` must be a tf.data.Dataset or an (x, y) tuple of arrays, got a {type(data).__name__}; "
            "wrap a generator in tf.data.Dataset.from_generator."
        )


def batches(data, name="test_data", batch_size=128):
    """A tf.data.Dataset of (x, y) batches from any accepted form (see the module docstring)."""
    batch_size = check_int(batch_size, "batch_size", 1)
    if isinstance(data, tf.data.Dataset):
        dataset = data
    elif isinstance(data, dict):
        if _label_key(data) is None:
            raise ValueError(f"`{name}` as a dict must hold labels under one of {list(LABEL_KEYS)}, got keys {sorted(data)}.")
        dataset = tf.data.Dataset.from_tensor_slices(_split_dict(data, _label_key(data))).batch(batch_size)
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        dataset = tf.data.Dataset.from_tensor_slices(tuple(data[:2])).batch(batch_size)
    elif isinstance(data, (tuple, list)):
        raise ValueError(f"`{name}` as a tuple must be (x, y) or (x, y, sample_weight), got {len(data)} items.")
    else:
        _refuse_iterators(data, name)
        raise ValueError(
            f"`{name}` must be a tf.data.Dataset of (x, y) batches or an (x, y) tuple of arrays, got {type(data).__name__}."
        )
    spec = dataset.element_spec
    if isinstance(spec, dict):
        key = _label_key(spec)
        if key is None:
            raise ValueError(
                f"`{name}` yields dicts without labels (keys {sorted(spec)}); evaluation needs a key in {list(LABEL_KEYS)}."
            )
        dataset = dataset.map(lambda element: _split_dict(element, key))
    elif isinstance(spec, tuple) and len(spec) in (2, 3):
        if len(spec) == 3:
            dataset = dataset.map(lambda x, y, w: (x, y))
    else:
        raise ValueError(
            f"`{name}` yields only inputs x, no labels; evaluation needs (x, y) batches, "
            "e.g. tf.data.Dataset.from_tensor_slices((x, y)).batch(128)."
        )
    label_spec = dataset.element_spec[1]
    if isinstance(label_spec, tf.TensorSpec) and label_spec.shape.rank == 0:
        raise ValueError(f"`{name}` is not batched (one label per element); call `.batch(batch_size)` on it.")
    return dataset


def inputs(data, name="data", batch_size=128):
    """A tf.data.Dataset of input batches x: labels, if present, are dropped (e.g. out-of-distribution data)."""
    batch_size = check_int(batch_size, "batch_size", 1)
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, dict) and _label_key(spec) is not None:
            return data.map(lambda element: _split_dict(element, _label_key(spec))[0])
        if isinstance(spec, tuple) and len(spec) in (2, 3):
            return data.map(lambda *element: element[0])
        return data
    if isinstance(data, dict) and _label_key(data) is not None:
        data = _split_dict(data, _label_key(data))[0]
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        data = data[0]
    elif not isinstance(data, (np.ndarray, dict)) and not tf.is_tensor(data):
        _refuse_iterators(data, name)
        raise ValueError(f"`{name}` must be a tf.data.Dataset, arrays x, or an (x, y) tuple, got {type(data).__name__}.")
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size)


def labels_of(data, num_classes=None, name="test_data"):
    """All labels of `data` as class indices [N] (one-hot rows need `num_classes`, or are taken as [N, C])."""
    y = np.concatenate([np.asarray(labels) for _, labels in batches(data, name)])
    if num_classes is None:
        num_classes = y.shape[-1] if y.ndim == 2 and y.shape[-1] > 1 else int(y.max()) + 1
    return sparse_labels(y, num_classes, name)


def sparse_labels(y, num_classes, name="test_data"):
    """Class indices [N] from integer labels [N] / [N, 1] or one-hot rows [N, C]."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[-1] == num_classes and num_classes > 1:
        return np.argmax(y, axis=-1).astype(np.int64)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[-1] != 1):
        raise ValueError(
            f"`{name}` labels must be class indices [N] or one-hot rows [N, {num_classes}], got shape {y.shape}."
        )
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"`{name}` labels must be whole class indices, got values such as {y[np.mod(y, 1) != 0][0]!r}.")
    if y.dtype.kind not in "iuf" or y.size == 0:
        raise ValueError(f"`{name}` labels must be class indices, got dtype {y.dtype} and {y.size} labels.")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"`{name}` labels must lie in [0, {num_classes}) for a model with {num_classes} classes, "
            f"got {int(y.min())}..{int(y.max())}."
        )
    return y.astype(np.int64)
