"""Tiny-ImageNet (Le & Yang 2015) from its official folder layout, streamed from the JPEG files.

Download http://cs231n.stanford.edu/tiny-imagenet-200.zip, unzip it, and
point ``data_dir`` at the ``tiny-imagenet-200`` folder::

    wnids.txt                        200 class ids (n01443537, ...)
    train/<wnid>/images/*.JPEG       500 64x64 images per class
    val/images/*.JPEG                10,000 images
    val/val_annotations.txt          "<file>\\t<wnid>\\t<box>" per val image

The labelled "val" images are the test set (the "test" folder has no labels).
Labels number the sorted wnids. ``validation_size`` / ``train_subset`` draw
from one seeded permutation of the training files, as for the array datasets.

>>> TINY_IMAGENET_NUM_CLASSES, TINY_IMAGENET_IMAGE_SIZE
(200, 64)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tfsubspace.data.record import split_indices
from tfsubspace.data.streaming import StreamSource

TINY_IMAGENET_NAME = "tiny_imagenet"
TINY_IMAGENET_NUM_CLASSES = 200
TINY_IMAGENET_IMAGE_SIZE = 64
# The statistics (and pad-4 crop + flip) of the paper authors' Tiny-ImageNet loader
# (apple/learning-subspaces, data/tinyimagenet.py).
TINY_IMAGENET_MEAN = (0.480, 0.448, 0.397)
TINY_IMAGENET_STD = (0.276, 0.269, 0.282)
_DOWNLOAD = ("download http://cs231n.stanford.edu/tiny-imagenet-200.zip, unzip it and set config.dataset.data_dir "
             "to the tiny-imagenet-200 folder (wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, "
             "val/val_annotations.txt)")


def _require(path: Path, what: str):
    if not path.exists():
        raise FileNotFoundError(f"Tiny-ImageNet is incomplete: no {what} at {path}; {_DOWNLOAD}.")


def read_folder(data_dir):
    """(wnids, (train paths, labels), (val paths, labels)) of a tiny-imagenet-200 folder, in sorted order.

    >>> read_folder(None)
    Traceback (most recent call last):
    ...
    FileNotFoundError: Tiny-ImageNet needs config.dataset.data_dir: download http://cs231n.stanford.edu/...
    """
    if data_dir is None:
        raise FileNotFoundError(f"Tiny-ImageNet needs config.dataset.data_dir: {_DOWNLOAD}.")
    root = Path(data_dir)
    _require(root / "wnids.txt", "wnids.txt")
    wnids = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_paths, train_labels = [], []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        _require(folder, f"training folder for class {wnid}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        train_paths += [str(p) for p in files]
        train_labels += [index[wnid]] * len(files)
    annotations = root / "val" / "val_annotations.txt"
    _require(annotations, "val/val_annotations.txt")
    val_paths, val_labels = [], []
    for line_number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise ValueError(f"{annotations} line {line_number} must be '<file>\\t<wnid>...' with a wnid of "
                             f"wnids.txt, got {line!r}")
        path = root / "val" / "images" / fields[0]
        _require(path, "validation image")
        val_paths.append(str(path))
        val_labels.append(index[fields[1]])
    if not train_paths or not val_paths:
        raise FileNotFoundError(f"Tiny-ImageNet at {root} has no training or validation images; {_DOWNLOAD}.")
    as_labels = lambda labels: np.asarray(labels, np.int64)  # noqa: E731
    return wnids, (np.asarray(train_paths), as_labels(train_labels)), (np.asarray(val_paths), as_labels(val_labels))


def tiny_imagenet_source(*, data_dir, seed=0, validation_size=0, train_subset=None, label_noise=0.0,
                         label_noise_seed=0):
    """The :class:`StreamSource` of a Tiny-ImageNet folder (arguments checked by the caller)."""
    import tensorflow as tf


    wnids, (paths, labels), (test_paths, test_labels) = read_folder(data_dir)
    if validation_size >= len(paths):
        raise ValueError(f"validation_size must be < the {len(paths)} training images, got {validation_size}")
    if train_subset is not None and train_subset > len(paths) - validation_size:
        raise ValueError(f"train_subset must be at most {len(paths) - validation_size}, got {train_subset}")
    train_idx, validation_idx = split_indices(len(paths), seed=seed, validation_size=validation_size,
                                               train_subset=train_subset)
    # The folder lists images class by class: without a fixed shuffle the
    # train-eval pipeline's first batches (the batch-norm recompute reads
    # only eval.batchnorm_steps of them) would hold a few classes only.
    train_idx = train_idx[np.random.default_rng(seed).permutation(len(train_idx))]
    train_labels = labels[train_idx]
    if label_noise:
        from tfsubspace.baselines.label_noise import corrupt_labels

        train_labels = corrupt_labels(train_labels, label_noise, len(wnids), seed=label_noise_seed)

    def examples(chosen_paths, chosen_labels):
        return tf.data.Dataset.from_tensor_slices((chosen_paths, np.asarray(chosen_labels, np.int64)))

    digest = hashlib.sha256("\n".join(wnids).encode() + Path(data_dir, "val", "val_annotations.txt").read_bytes())
    return StreamSource(
        train=examples(paths[train_idx], train_labels),
        test=examples(test_paths, test_labels),
        validation=examples(paths[validation_idx], labels[validation_idx]) if validation_size else None,
        load=tf.io.read_file,
        num_classes=len(wnids),
        train_size=len(train_idx), validation_size=int(validation_size), test_size=len(test_paths),
        center_crop=False,
        shuffle_buffer=len(train_idx),  # file paths: the whole split shuffles cheaply
        mean=TINY_IMAGENET_MEAN, std=TINY_IMAGENET_STD,
        source={"name": TINY_IMAGENET_NAME, "origin": "folder", "path": str(Path(data_dir).resolve()),
                "sha256": {"wnids+val_annotations": digest.hexdigest()}},
    )
