"""Label noise: a fixed, seeded fraction of training labels replaced by random labels.

Paper 001 §4.3 (Fig. 8) and §4.4 (Fig. 12): "with label noise c ... before
training, a fraction c of training data are assigned random labels (which are
fixed for all methods)". Following that wording, a chosen example gets a label
drawn uniformly from all `num_classes` classes, so it may keep its original
label by chance (probability 1/num_classes): exactly round(c·n) examples are
*reassigned*, and about (1 − 1/num_classes)·round(c·n) actually change.

The choice depends only on (n, seed, num_classes): a seeded permutation picks
the examples in order and a seeded draw gives each position its random label,
so every method sees the same corrupted set, and the set for a smaller c is
contained in the set for a larger c (with the same random labels).

Example:

>>> import numpy as np
>>> from tfsubspace.baselines import corrupt_labels
>>> labels = np.arange(10) % 5
>>> noisy, chosen = corrupt_labels(labels, 0.4, num_classes=5, seed=0, return_indices=True)
>>> len(chosen), bool(np.all(noisy[np.setdiff1d(np.arange(10), chosen)] == labels[np.setdiff1d(np.arange(10), chosen)]))
(4, True)
>>> bool(np.array_equal(noisy, corrupt_labels(labels, 0.4, num_classes=5, seed=0)))
True
"""

import numbers

import numpy as np


def corrupt_labels(labels, fraction, num_classes, seed=0, return_indices=False):
    """Replaces round(fraction·n) seeded-chosen labels by uniformly random labels (001 §4.3).

    Args:
        labels: 1-D integer class labels in [0, num_classes).
        fraction: c in [0, 1], the fraction of examples reassigned.
        num_classes: the number of classes; random labels are uniform on it.
        seed: the integer seed fixing which examples and which labels.
        return_indices: also return the sorted indices of the reassigned
            examples.

    Returns:
        A new int64 array of labels (and the indices, if asked). `labels`
        is not modified. k = round(fraction·n) uses Python's `round`.

    Example:

    >>> import numpy as np
    >>> from tfsubspace.baselines import corrupt_labels
    >>> labels = np.zeros(1000, dtype=int)
    >>> noisy, chosen = corrupt_labels(labels, 0.25, num_classes=10, seed=3, return_indices=True)
    >>> len(chosen), int(np.sum(noisy != labels)) < 250
    (250, True)
    >>> corrupt_labels(labels, 1.5, num_classes=10)
    Traceback (most recent call last):
    ...
    ValueError: `fraction` must be a number in [0, 1], got 1.5.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction <= 1:
        raise ValueError(f"`fraction` must be a number in [0, 1], got {fraction!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}.")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be a 1-D array of integer class ids, got dtype {labels.dtype} shape {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"`labels` must lie in [0, num_classes) = [0, {num_classes}), got [{labels.min()}, {labels.max()}].")
    n = len(labels)
    rng = np.random.default_rng(seed)
    # Both draws cover all n positions whatever the fraction: the chosen sets
    # (and their labels) are nested across fractions for a given seed.
    order = rng.permutation(n)
    random_labels = rng.integers(0, num_classes, size=n)
    count = round(float(fraction) * n)
    noisy = labels.astype(np.int64, copy=True)
    noisy[order[:count]] = random_labels[:count]
    if return_indices:
        return noisy, np.sort(order[:count])
    return noisy
