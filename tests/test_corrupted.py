"""Corrupted test sets: the Fashion-MNIST-C generator and its checksummed cache, and the tfds loaders."""

import json
import logging
import os

import numpy as np
import pytest

from tfsubspace.data import corrupted

needs_generator = pytest.mark.skipif(
    not corrupted.generator_available(),
    reason=f"the optional extra `shift` ({corrupted.EXTRA}) is not installed",
)


def grey_images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8), np.arange(n) % 10


def test_pad_centres_28_in_32_like_the_pipeline():
    images, _ = grey_images(2)
    padded = corrupted.pad(images)
    assert padded.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], images)
    assert padded[:, :2].sum() == 0 and padded[:, 30:].sum() == 0 and padded[:, :, :2].sum() == 0


@needs_generator
def test_generator_is_seeded_per_set_and_leaves_numpy_global_rng_alone():
    images, _ = grey_images()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for corruption in ("gaussian_noise", "impulse_noise"):  # numpy's RNG, and the package's own seed=
        first = corrupted.corrupt_images(images, corruption, 3, seed=0)
        again = corrupted.corrupt_images(images, corruption, 3, seed=0)
        other = corrupted.corrupt_images(images, corruption, 3, seed=1)
        assert first.shape == (3, 32, 32, 1) and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
        assert not np.array_equal(first, corrupted.pad(images))
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    # Stronger severity, more noise.
    weak = corrupted.corrupt_images(images, "gaussian_noise", 1).astype(float)
    strong = corrupted.corrupt_images(images, "gaussian_noise", 5).astype(float)
    clean = corrupted.pad(images).astype(float)
    assert np.abs(strong - clean).mean() > np.abs(weak - clean).mean()


@needs_generator
def test_saturate_leaves_grey_images_unchanged_so_it_is_not_in_the_grey_default():
    images, _ = grey_images()
    np.testing.assert_array_equal(corrupted.corrupt_images(images, "saturate", 5), corrupted.pad(images))
    assert "saturate" not in corrupted.GREY_CORRUPTIONS and len(corrupted.GREY_CORRUPTIONS) == 18


def test_the_default_corruptions_of_a_grey_set_are_the_18_that_change_it(tmp_path, monkeypatch):
    images, labels = grey_images(2)
    directory = corrupted.cache_directory(tmp_path, images, labels)
    for corruption in corrupted.GREY_CORRUPTIONS:
        corrupted.save_set(directory, corruption, 1, corrupted.pad(images), labels)
    monkeypatch.setattr(corrupted, "generator_available", lambda: False)  # nothing may be generated
    for default in (None, ()):
        sets = corrupted.corrupted_sets(images, labels, tmp_path, corruptions=default, severities=[1])
        assert tuple(sets) == corrupted.GREY_CORRUPTIONS


@needs_generator
def test_spatter_without_a_drop_keeps_the_image_instead_of_the_packages_black_nan_image():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(30, 28, 28, 1), dtype=np.uint8)  # no black pixel anywhere
    with np.errstate(all="ignore"):  # the package divides 0 by 0 there
        out = corrupted.corrupt_images(images, "spatter", 1, seed=2)  # image 22 draws no drop here
    assert (out.reshape(30, -1).max(1) > 0).all()
    np.testing.assert_array_equal(out[22], corrupted.pad(images)[22])


@needs_generator
def test_generated_sets_are_cached_checked_and_a_damaged_file_is_regenerated(tmp_path, caplog):
    images, labels = grey_images()
    sets = corrupted.corrupted_sets(images, labels, tmp_path, corruptions=["gaussian_noise"], severities=[1, 2])
    directory = corrupted.cache_directory(tmp_path, images, labels)
    manifest = json.loads(open(os.path.join(directory, corrupted.MANIFEST)).read())
    assert sorted(manifest) == ["gaussian_noise_1.npz", "gaussian_noise_2.npz"]
    path = os.path.join(directory, "gaussian_noise_1.npz")
    with open(path, "r+b") as handle:  # damage one byte
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING):
        again = corrupted.corrupted_sets(images, labels, tmp_path, corruptions=["gaussian_noise"], severities=[1, 2])
    assert "fails its SHA-256 check" in caplog.text and "Regenerating" in caplog.text
    np.testing.assert_array_equal(again["gaussian_noise"][1][0], sets["gaussian_noise"][1][0])


def test_cache_written_by_hand_is_read_and_a_damaged_file_refused_without_the_generator(tmp_path, monkeypatch):
    images, labels = grey_images()
    directory = corrupted.cache_directory(tmp_path, images, labels, seed=4)
    mine = np.full((3, 32, 32, 1), 7, np.uint8)
    for severity in (1, 2):
        corrupted.save_set(directory, "fog", severity, mine + severity, labels)
    monkeypatch.setattr(corrupted, "generator_available", lambda: False)
    sets = corrupted.corrupted_sets(images, labels, tmp_path, corruptions=["fog"], severities=[2, 1], seed=4)
    assert sorted(sets["fog"]) == [1, 2]
    np.testing.assert_array_equal(sets["fog"][2][0], mine + 2)
    np.testing.assert_array_equal(sets["fog"][2][1], labels)
    with open(os.path.join(directory, "fog_2.npz"), "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match=r"fog_2.npz fails its SHA-256 check .* delete it to regenerate") as error:
        corrupted.corrupted_sets(images, labels, tmp_path, corruptions=["fog"], severities=[2], seed=4)
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="pip install 'imagecorruptions-imaug==1.1.5'"):
        corrupted.corrupted_sets(images, labels, tmp_path, corruptions=["snow"], severities=[2], seed=4)
    # Another seed or another subset is another folder: never served the wrong sets.
    assert corrupted.cache_directory(tmp_path, images, labels, seed=5) != directory
    assert corrupted.cache_directory(tmp_path, images[:2], labels[:2], seed=4) != directory


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: corrupted.check_corruptions(["fog", "nope"]), "`corruptions` must be empty or None (all), or distinct names"),
        (lambda: corrupted.check_corruptions("fog"), "`corruptions` must be empty or None (all), or distinct names"),
        (lambda: corrupted.check_severities([0]), "`severities` entries must be an integer in [1, 5], got 0."),
        (lambda: corrupted.check_severities([]), "`severities` must be a non-empty list"),
        (lambda: corrupted.check_severities([2, 2]), "`severities` must be distinct"),
        (lambda: corrupted.pad(np.zeros((1, 28, 28, 3), np.uint8)), "`images` must be grey uint8 images"),
    ],
)
def test_bad_arguments_fail_in_one_line(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_tfds_loaders_build_the_mapping_from_builder_configs_on_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4):
        cifar = corrupted.cifar10_corrupted(corruptions=["glass_blur", "fog"], severities=[1, 3], batch_size=3)
        imagenet = corrupted.imagenet2012_corrupted(corruptions=["snow"], severities=[2], examples=2)
    assert {c: sorted(s) for c, s in cifar.items()} == {"glass_blur": [1, 3], "fog": [1, 3]}
    x, y = next(iter(cifar["glass_blur"][3]))
    assert x.shape == (3, 32, 32, 3) and x.dtype.name == "uint8" and y.shape == (3,)
    x, _ = next(iter(imagenet["snow"][2]))
    assert x.shape[1:] == (224, 224, 3)


def test_tfds_loader_says_in_one_line_when_the_data_is_absent(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        corrupted.cifar10_corrupted(corruptions=["glass_blur"], severities=[3], data_dir=str(tmp_path))
    text = str(error.value)
    assert "cifar10_corrupted/frosted_glass_blur_3 is not prepared in" in text and "tfds build" in text
    assert "\n" not in text
