"""Corrupted test sets for dataset shift: Fashion-MNIST-C offline, CIFAR-10-C and ImageNet-C with tfds.

Every loader returns the mapping `ts.evaluate.shift` takes, {corruption:
{severity: data}}.

Fashion-MNIST-C is generated here with the optional extra `shift`
(`pip install imagecorruptions-imaug==1.1.5`, Hendrycks & Dietterich's
corruption code): each grey 28×28 image is zero-padded, centred, to 32×32
(the package needs ≥ 32×32), repeated into the RGB uint8 HWC image the
package expects, corrupted, and its first channel kept (the package's
corruption of the grey image; a luminance mix would shrink independent
per-channel noise). Randomness is seeded per (seed, corruption, severity):
the package draws from numpy's global RNG (seeded here, then restored) and,
for `impulse_noise` and `glass_blur`, from its own `seed=` argument (given
here per image), which numpy's seed does not reach. Sets are cached as one
`.npz` per corruption and severity under `cache_directory(...)`, with a
`manifest.json` of SHA-256 hashes checked on every load: a damaged file is
regenerated when the extra is installed, refused in one line otherwise.

CIFAR-10-C and ImageNet-C come from tensorflow_datasets (`cifar10_corrupted`,
`imagenet2012_corrupted`, configs `<corruption>_<severity>`), already
prepared in `data_dir` (`download=False` by default: CIFAR-10-C is a 2.9 GB
download, and offline tfds retries for minutes).

Example (the cache format, without the extra):

>>> import tempfile, numpy as np
>>> from tfsubspace.data import corrupted
>>> images, labels = np.zeros((4, 28, 28, 1), np.uint8), np.arange(4)
>>> directory = corrupted.cache_directory(tempfile.mkdtemp(), images, labels, seed=0)
>>> corrupted.save_set(directory, "fog", 2, np.ones((4, 32, 32, 1), np.uint8), labels)
>>> sets = corrupted.load_cached(directory, ["fog"], [2])
>>> sets["fog"][2][0].shape, sets["fog"][2][1].tolist()
((4, 32, 32, 1), [0, 1, 2, 3])
"""

import hashlib
import json
import logging
import os
import zlib

import numpy as np

from tfsubspace import checks, files

#: The 15 benchmark corruptions of Hendrycks & Dietterich (2019), then the 4 extra ones.
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
#: tfds' cifar10_corrupted names two corruptions differently.
CIFAR10_NAMES = {"glass_blur": "frosted_glass_blur", "elastic_transform": "elastic"}
SEVERITIES = (1, 2, 3, 4, 5)
#: The package applies these two with a `seed=` argument of its own, not numpy's global RNG.
_OWN_SEED = ("impulse_noise", "glass_blur")
PADDED_SIZE = 32
MANIFEST = "manifest.json"
EXTRA = "imagecorruptions-imaug==1.1.5"

_logger = logging.getLogger(__name__)


def check_corruptions(corruptions, name="`corruptions`"):
    """A tuple of known corruption names; None or () means all 19 (benchmark and extra).

    >>> check_corruptions(None)[:2], check_corruptions(["fog"])
    (('gaussian_noise', 'shot_noise'), ('fog',))
    """
    if corruptions is None or (isinstance(corruptions, (tuple, list)) and not corruptions):
        return CORRUPTIONS
    if isinstance(corruptions, str) or not isinstance(corruptions, (tuple, list)) or \
            any(c not in CORRUPTIONS for c in corruptions) or len(set(corruptions)) != len(corruptions):
        raise ValueError(f"{name} must be None (all) or distinct names from {CORRUPTIONS}, got {corruptions!r}.")
    return tuple(corruptions)


def check_severities(severities, name="`severities`"):
    """A sorted tuple of distinct severities in 1..5.

    >>> check_severities([3, 1])
    (1, 3)
    """
    if isinstance(severities, (str, bytes)) or not isinstance(severities, (tuple, list)) or not severities:
        raise ValueError(f"{name} must be a non-empty list of integers in [1, 5], got {severities!r}.")
    values = [checks.integer(s, f"{name} entries", minimum=1, maximum=5) for s in severities]
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must be distinct integers in [1, 5], got {severities!r}.")
    return tuple(sorted(values))


def generator_available():
    """True if the optional extra `shift` (imagecorruptions-imaug) is installed."""
    try:
        import imagecorruptions  # noqa: F401
    except ImportError:
        return False
    return True


def _require_generator():
    if not generator_available():
        raise FileNotFoundError(
            f"Fashion-MNIST-C is generated with the optional extra: pip install '{EXTRA}' "
            "(or tfsubspace[shift]), or fill the cache with tfsubspace.data.corrupted.save_set."
        )


def _grey_uint8(images, name="images"):
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f"`{name}` must be grey uint8 images [N, H, W, 1], got {images.dtype} {images.shape}.")
    if images.shape[1] > PADDED_SIZE or images.shape[2] > PADDED_SIZE:
        raise ValueError(f"`{name}` must be at most {PADDED_SIZE}×{PADDED_SIZE}, got {images.shape[1:3]}.")
    return images


def pad(images):
    """Grey uint8 [N, H, W, 1] zero-padded, centred, to [N, 32, 32, 1] (as `make_pipeline(pad_to=32)`)."""
    images = _grey_uint8(images)
    top, left = (PADDED_SIZE - images.shape[1]) // 2, (PADDED_SIZE - images.shape[2]) // 2
    out = np.zeros((len(images), PADDED_SIZE, PADDED_SIZE, 1), np.uint8)
    out[:, top:top + images.shape[1], left:left + images.shape[2]] = images
    return out


def _set_seed(seed, corruption, severity):
    # crc32 of the name: the seed of a set does not depend on which others are generated.
    return np.random.SeedSequence([seed, zlib.crc32(corruption.encode()), severity])


def corrupt_images(images, corruption, severity, seed=0):
    """`images` (grey uint8 [N, H, W, 1], H, W ≤ 32) corrupted: uint8 [N, 32, 32, 1]; needs the extra.

    The same (images, corruption, severity, seed) always gives the same bytes;
    numpy's global RNG is left as it was.
    """
    _require_generator()
    from imagecorruptions import corruption_dict
    from PIL import Image

    check_corruptions([corruption], "`corruption`")
    severity = checks.integer(severity, "`severity`", minimum=1, maximum=5)
    seed = checks.seed(seed)
    padded = pad(images)
    sequence = _set_seed(seed, corruption, severity)
    global_seed, image_seeds = sequence.generate_state(1)[0], sequence.generate_state(len(padded) + 1)[1:]
    state = np.random.get_state()
    np.random.seed(int(global_seed))
    try:
        out = np.empty_like(padded)
        for i, image in enumerate(padded):
            extra = {"seed": int(image_seeds[i])} if corruption in _OWN_SEED else {}
            rgb = np.repeat(image, 3, axis=-1)
            with np.errstate(divide="ignore", invalid="ignore"):  # spatter's 0/0, handled below
                result = np.asarray(corruption_dict[corruption](Image.fromarray(rgb), severity, **extra), np.float64)
            # spatter divides by the max of an all-zero liquid mask when no drop passes its threshold
            # (often at 32×32): NaN everywhere, which `corrupt` casts to a black image. No drop = the input.
            result = np.where(np.isnan(result), rgb, result)
            out[i, ..., 0] = np.uint8(result[..., 0])  # `corrupt`'s own cast (truncation)
    finally:
        np.random.set_state(state)
    return out


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_directory(cache_dir, images, labels, seed=0, name="fashion_mnist_c"):
    """`cache_dir/<name>_<N>_seed<seed>_<hash of the clean images and labels>`: one folder per source set."""
    images, labels = np.ascontiguousarray(images), np.ascontiguousarray(np.asarray(labels, np.int64))
    source = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    return os.path.join(os.fspath(cache_dir), f"{name}_{len(images)}_seed{checks.seed(seed)}_{source}")


def _file_name(corruption, severity):
    return f"{corruption}_{severity}.npz"


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable manifest ({error}); delete it and the sets beside it.") from None
    return manifest


def save_set(directory, corruption, severity, images, labels):
    """Writes one corrupted set (uint8 images, int64 labels) as `<corruption>_<severity>.npz` and its SHA-256."""
    check_corruptions([corruption], "`corruption`")
    severity = checks.integer(severity, "`severity`", minimum=1, maximum=5)
    images, labels = np.asarray(images), np.asarray(labels, np.int64).reshape(-1)
    if images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(f"`images` must be uint8 with one label each, got {images.dtype} {images.shape} and "
                         f"{labels.shape} labels.")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, _file_name(corruption, severity))
    with files.replacing(path, suffix=".npz") as temporary:
        np.savez(temporary, images=images, labels=labels)
    manifest = _read_manifest(directory)
    manifest[_file_name(corruption, severity)] = _sha256_of(path)
    files.write_atomically(os.path.join(directory, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True))


def _verified(directory, corruption, severity, manifest):
    """(images, labels) of a cached set, None if absent; ValueError if it fails its checksum."""
    file_name = _file_name(corruption, severity)
    path = os.path.join(directory, file_name)
    if not os.path.exists(path):
        return None
    expected = manifest.get(file_name)
    if expected is None or _sha256_of(path) != expected:
        raise ValueError(f"{path} fails its SHA-256 check against {os.path.join(directory, MANIFEST)}; "
                         "delete it to regenerate it (needs the extra " + EXTRA + ").")
    with np.load(path) as stored:
        return stored["images"], stored["labels"]


def load_cached(directory, corruptions, severities):
    """{corruption: {severity: (images, labels)}} from a cache folder, every file checked; refuses missing sets."""
    corruptions, severities = check_corruptions(corruptions), check_severities(severities)
    manifest = _read_manifest(directory)
    sets = {}
    for corruption in corruptions:
        for severity in severities:
            found = _verified(directory, corruption, severity, manifest)
            if found is None:
                raise FileNotFoundError(f"{os.path.join(directory, _file_name(corruption, severity))} is missing.")
            sets.setdefault(corruption, {})[severity] = found
    return sets


def corrupted_sets(images, labels, cache_dir, *, corruptions=None, severities=SEVERITIES, seed=0,
                   name="fashion_mnist_c"):
    """{corruption: {severity: (uint8 [N, 32, 32, 1], labels)}} of grey `images`, cached in `cache_dir`.

    Cached sets are read after their SHA-256 check; missing or damaged ones
    are generated (and cached) when the extra is installed, otherwise refused
    in one line.
    """
    corruptions, severities = check_corruptions(corruptions), check_severities(severities)
    images, labels = _grey_uint8(images), np.asarray(labels, np.int64).reshape(-1)
    directory = cache_directory(cache_dir, images, labels, seed, name)
    manifest = _read_manifest(directory)
    sets = {}
    for corruption in corruptions:
        for severity in severities:
            try:
                found = _verified(directory, corruption, severity, manifest)
            except ValueError as error:
                if not generator_available():
                    raise
                _logger.warning("%s Regenerating it.", error)
                found = None
            if found is None:
                if not generator_available():
                    _require_generator()
                _logger.info("Generating %s severity %d of %d images in %s.", corruption, severity, len(images), directory)
                save_set(directory, corruption, severity, corrupt_images(images, corruption, severity, seed), labels)
                manifest = _read_manifest(directory)
                found = _verified(directory, corruption, severity, manifest)
            sets.setdefault(corruption, {})[severity] = found
    return sets


def fashion_mnist_c(cache_dir, *, corruptions=None, severities=SEVERITIES, examples=None, seed=0, data_dir=None):
    """Fashion-MNIST-C: the first `examples` test images (None: all 10,000), corrupted and cached (32×32×1)."""
    from tfsubspace.data.sources import load_arrays

    examples = checks.integer(examples, "`examples`", minimum=1, allow_none=True)
    _, (x_test, y_test) = load_arrays("fashion_mnist", data_dir)
    return corrupted_sets(x_test[:examples], y_test[:examples], cache_dir, corruptions=corruptions,
                          severities=severities, seed=seed)


def _tfds_sets(builder, split, corruptions, severities, examples, data_dir, download, batch_size, names=None):
    import tensorflow_datasets as tfds

    corruptions, severities = check_corruptions(corruptions), check_severities(severities)
    examples = checks.integer(examples, "`examples`", minimum=1, allow_none=True)
    batch_size = checks.integer(batch_size, "`batch_size`", minimum=1)
    checks.boolean(download, "`download`")
    split = split if examples is None else f"{split}[:{examples}]"
    sets = {}
    for corruption in corruptions:
        for severity in severities:
            config = f"{builder}/{(names or {}).get(corruption, corruption)}_{severity}"
            try:
                dataset = tfds.load(config, split=split, as_supervised=True, data_dir=data_dir, download=download)
            except Exception as error:  # tfds fails in many ways when the data is absent; all mean the same
                where = data_dir or "$TFDS_DATA_DIR or ~/tensorflow_datasets"
                raise FileNotFoundError(
                    f"{config} is not prepared in {where} ({type(error).__name__}); build it once with network "
                    f"access (`tfds build {config}`) or pass download=True."
                ) from None
            sets.setdefault(corruption, {})[severity] = dataset.batch(batch_size)
    return sets


def cifar10_corrupted(*, corruptions=None, severities=SEVERITIES, examples=None, data_dir=None, download=False,
                      batch_size=1000):
    """CIFAR-10-C from tfds: {corruption: {severity: tf.data batches of (uint8 [B, 32, 32, 3], label)}}.

    Corruption names are this module's (`glass_blur`, `elastic_transform`),
    mapped to tfds' configs (`frosted_glass_blur_3`, `elastic_3`).
    """
    return _tfds_sets("cifar10_corrupted", "test", corruptions, severities, examples, data_dir, download,
                      batch_size, CIFAR10_NAMES)


def imagenet2012_corrupted(*, corruptions=None, severities=SEVERITIES, examples=None, data_dir=None,
                           download=False, batch_size=100):
    """ImageNet-C from tfds (validation split, 224×224×3 uint8): the same mapping as `cifar10_corrupted`."""
    return _tfds_sets("imagenet2012_corrupted", "validation", corruptions, severities, examples, data_dir,
                      download, batch_size)
