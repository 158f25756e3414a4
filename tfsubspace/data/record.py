"""The record of one experiment's data (`Datasets`) and the seeded split every source shares.

Its own room so that the array splits (`splits`) and the streamed sources
(`streaming`, `imagenet`, `tiny_imagenet`) build the same record without
importing each other.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tfsubspace.data.validators import ImageShape


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The pipelines and sizes of one experiment's data.

    ``train`` is shuffled (and augmented if asked); ``train_eval`` holds the
    same training examples without shuffling or augmentation, batched like the
    evaluation sets, for batch-norm recomputation and train-loss evaluation.
    ``validation`` is None unless a validation holdout was requested.
    ``input_shape`` is the shape of one image as the model sees it (after
    ``pad_to``).

    >>> import numpy as np
    >>> from tfsubspace.data import from_arrays
    >>> sets = from_arrays((np.zeros((10, 8, 8, 1), np.uint8), np.arange(10) % 2),
    ...                    (np.zeros((4, 8, 8, 1), np.uint8), np.arange(4) % 2),
    ...                    batch_size=4)
    >>> sets.train_size, sets.steps_per_epoch, sets.num_classes, sets.input_shape
    (10, 3, 2, (8, 8, 1))
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    train_eval: tf.data.Dataset
    num_classes: int
    input_shape: ImageShape
    train_size: int
    validation_size: int
    test_size: int
    steps_per_epoch: int
    #: ``train_epochs(initial_epoch, order_seed=None)``: the endless stream of
    #: training epochs ``initial_epoch``, ``initial_epoch + 1``, ..., each of
    #: ``steps_per_epoch`` batches, its order and augmentation keyed by (seed,
    #: epoch number); ``order_seed`` replaces the seed for the order and
    #: augmentation only (the examples, split and label noise stay), e.g. for
    #: independently trained ensemble members. Fit it with ``steps_per_epoch=``
    #: and ``initial_epoch=``: a run resumed at epoch k then sees the batches an
    #: uninterrupted run sees at epoch k.
    train_epochs: Optional[Callable[[int], tf.data.Dataset]] = None
    #: Which data was used (:func:`build_datasets` only): the dataset name, the
    #: directory or tensorflow_datasets, the SHA-256 of the files or arrays,
    #: and the numbers of examples per split. None for :func:`from_arrays`.
    source: Optional[dict] = None



def split_indices(num_examples: int, *, seed: int, validation_size: int, train_subset):
    """Sorted (train, validation) indices from one seeded permutation.

    The validation holdout is drawn first, so it does not depend on
    ``train_subset``, and subsets of growing size are nested.
    """
    order = np.random.default_rng(seed).permutation(num_examples)
    validation = np.sort(order[:validation_size])
    remaining = order[validation_size:]
    train = np.sort(remaining if train_subset is None else remaining[:train_subset])
    return train, validation
