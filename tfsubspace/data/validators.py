"""Argument checks of the data pipeline (plain Python, so bad arguments fail before TF sees them).

Numbers and seeds go through `tfsubspace.checks`, like every other check of
the library and `config.validate`.

>>> _check_augment("crop", training=True)
'crop'
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from tfsubspace import checks

AUGMENTATIONS = (None, "crop", "flip_crop")

ImageShape = Tuple[int, int, int]
ArrayPair = Tuple[np.ndarray, np.ndarray]
Stats = Union[float, Sequence[float], None]


_is_int = checks.is_integer


def _check_positive_int(value, argument: str, *, allow_none: bool = False) -> Optional[int]:
    return checks.integer(value, f"`{argument}`", minimum=1, allow_none=allow_none)


def _check_seed(seed, argument: str = "seed") -> int:
    return checks.seed(seed, f"`{argument}`")


def _check_augment(augment, training: bool) -> Optional[str]:
    if not (augment is None or (isinstance(augment, str) and augment in AUGMENTATIONS)):
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if augment is not None and not training:
        raise ValueError(f"augment={augment!r} needs training=True; evaluation data is never augmented")
    return augment


def _check_training(training) -> bool:
    return checks.boolean(training, "`training`")


def _check_arrays(images, labels, what: str = "") -> ArrayPair:
    """Validate one split; add a channel axis to [N, H, W] images."""
    images, labels = np.asarray(images), np.asarray(labels)
    images_arg, labels_arg = f"{what}images", f"{what}labels"
    if images.dtype != np.uint8:
        raise ValueError(f"{images_arg} must be uint8 (values 0..255), got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(
            f"{images_arg} must have shape [N, H, W, C] or [N, H, W] with no empty axis, "
            f"got {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{labels_arg} must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_arg} and {labels_arg} must have the same length, "
            f"got {len(images)} images and {len(labels)} labels"
        )
    if labels.min() < 0:
        raise ValueError(f"{labels_arg} must be >= 0, got minimum {labels.min()}")
    return images, labels.astype(np.int64, copy=False)


def _check_pad_to(pad_to, image_shape: ImageShape) -> Optional[int]:
    if pad_to is None:
        return None
    height, width = image_shape[:2]
    if not _is_int(pad_to) or pad_to < max(height, width):
        raise ValueError(
            f"pad_to must be None or an integer >= the image size {height}x{width}, got {pad_to!r}"
        )
    return int(pad_to)


def _check_normalization(mean: Stats, std: Stats, channels: int):
    """Return (mean, std) as float32 arrays of shape [channels], or None."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError(f"mean and std must be given together, got mean={mean!r}, std={std!r}")
    stats = []
    for argument, value in (("mean", mean), ("std", std)):
        try:
            array = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{argument} must be a float or a sequence of floats, got {value!r}") from err
        if array.ndim != 1 or array.size not in (1, channels) or not np.all(np.isfinite(array)):
            raise ValueError(
                f"{argument} must be a finite float or {channels} per-channel floats, got {value!r}"
            )
        stats.append(np.broadcast_to(array, (channels,)).astype(np.float32))
    if np.any(stats[1] <= 0):
        raise ValueError(f"std must be positive, got {std!r}")
    return stats[0], stats[1]


def _check_split_args(validation_size, train_subset):
    return (checks.integer(validation_size, "`validation_size`", minimum=0),
            _check_positive_int(train_subset, "train_subset", allow_none=True))


def _check_label_noise(label_noise, label_noise_seed):
    return checks.fraction(label_noise, "`label_noise`"), _check_seed(label_noise_seed, "label_noise_seed")
