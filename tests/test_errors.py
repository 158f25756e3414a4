"""A catalogue of bad inputs: each gives one clear, one-line error from tfsubspace.

Every entry asserts that

- the exception is exactly the expected ValueError / TypeError (FileNotFoundError
  for data that is not there),
- its message is one line, names the argument and the allowed values
  (the `match` regex), and
- it is raised by tfsubspace itself, before TensorFlow/Keras internals run: the
  traceback's last frame is inside the tfsubspace package and no frame of
  keras, tensorflow or ml_collections lies between the call and the raise.

The last tests check that loading never executes code from a file (issue 6
item 5): no pickle / eval / exec / unsafe deserialization in the library, and a
`.keras` file holding a Lambda layer is refused with safe mode on.
"""

import gzip
import json
import os
import re
import struct
import traceback
import types
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from tfsubspace import config as config_lib
from tfsubspace import data as data_lib
from tfsubspace import checkpointing, files
from tfsubspace import workdir as workdir_lib
from tfsubspace.baselines import label_noise
from tfsubspace.models import get_model

PACKAGE_DIR = os.path.dirname(os.path.abspath(ts.__file__)) + os.sep
FRAMEWORK_DIRS = tuple(f"{os.sep}{name}{os.sep}" for name in ("keras", "tensorflow", "ml_collections", "numpy"))


def assert_clear_error(error, match, func, *args, **kwargs):
    """Calls func; checks a one-line `error` matching `match`, raised by tfsubspace."""
    with pytest.raises(Exception) as info:
        func(*args, **kwargs)
    exception = info.value
    assert type(exception) is error, f"expected {error.__name__}, got {type(exception).__name__}: {exception}"
    message = str(exception)
    assert re.search(match, message), f"{match!r} not found in {message!r}"
    assert message.strip() and "\n" not in message.strip(), f"message is not one line: {message!r}"
    frames = traceback.extract_tb(info.tb)
    assert frames[-1].filename.startswith(PACKAGE_DIR), (
        f"raised in {frames[-1].filename}:{frames[-1].lineno}, not by tfsubspace: {message!r}"
    )
    inside = [f"{f.filename}:{f.lineno}" for f in frames if any(d in f.filename for d in FRAMEWORK_DIRS)]
    assert not inside, f"raised after framework code ran: {inside}"
    return exception


# ---------------------------------------------------------------- building blocks


def dense_net(input_dim=4):
    return keras.Sequential([keras.Input((input_dim,)), keras.layers.Dense(3, name="head")], name="dense_net")


def bn_net():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(3, name="head")],
        name="bn_net",
    )


def line_model():
    return ts.convert(dense_net(), ts.Line(), seed=0)


def simplex_model():
    return ts.convert(dense_net(), ts.Simplex(3), seed=0)


def xy_dataset(n=8):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n) % 3)).batch(4)


def x_only_dataset(n=8):
    return tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).normal(size=(n, 4)).astype("float32")).batch(4)


def five_class_net():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)], name="five_classes")


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_fashion_mnist_lookalike(directory):
    """Valid IDX files under the Fashion-MNIST names whose contents are not the release."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        (directory / f"{split}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        )
        (directory / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(rng.integers(0, 10, n))))


class Opaque(keras.layers.Layer):
    """Takes an object Keras cannot serialize and has no get_config: it cannot be rebuilt."""

    def __init__(self, helper=None, **kwargs):
        super().__init__(**kwargs)
        self.helper = helper

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def built_subclassed():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    return model


def locked_config(**changes):
    """`base_config()`, locked like the training binary locks it, with changes applied."""
    config = config_lib.base_config()
    config.lock()
    for key, value in changes.items():
        section, field = key.split("__") if "__" in key else (None, key)
        setattr(config[section] if section else config, field, value)
    return config


def config_with_kwargs(**kwargs):
    config = config_lib.base_config()
    config.model.kwargs.update(kwargs)
    return config


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    """What a catalogue entry may need: a scratch directory and an offline tfds."""

    def offline_tfds(name, data_dir=None):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.delenv(data_lib.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setattr(data_lib.sources, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "no-default"))
    monkeypatch.setattr(data_lib.sources, "_load_from_tfds", offline_tfds)
    data_lib.sources._load_tfds_cached.cache_clear()
    yield types.SimpleNamespace(tmp_path=tmp_path)
    data_lib.sources._load_tfds_cached.cache_clear()


def corrupt_idx(ctx):
    path = ctx.tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x7fELF garbage, not an IDX file at all")
    return data_lib.read_idx(path)


def truncated_idx(ctx):
    path = ctx.tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(100))[:-7])
    return data_lib.read_idx(path)


def corrupt_gzip_idx(ctx):
    path = ctx.tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.ones((4, 28, 28))))[:-20])
    return data_lib.read_idx(path)


def checksum_mismatch(ctx):
    write_fashion_mnist_lookalike(ctx.tmp_path / "fmnist")
    return data_lib.load_arrays("fashion_mnist", data_dir=ctx.tmp_path / "fmnist")


def export_into_a_file(ctx):
    blocker = ctx.tmp_path / "a_file"
    blocker.write_text("not a directory")
    return line_model().export(blocker / "serving" / "1", alpha=0.5)


def compiled_line_model():
    model = line_model()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def checkpoint_with_corrupt_weights(ctx):
    model = compiled_line_model()
    path = checkpointing.save(model, ctx.tmp_path / "ckpt", {"epoch": 1})
    Path(path, checkpointing.WEIGHTS).write_bytes(b"\x89HDF\r\n garbage " * 8)
    return checkpointing.restore(compiled_line_model(), path)


def checkpoint_latest_points_at_incomplete(ctx):
    directory = ctx.tmp_path / "ckpt"
    checkpointing.save(compiled_line_model(), directory, {"epoch": 1})
    (directory / "epoch-00001" / checkpointing.STATE).unlink()
    return checkpointing.latest_checkpoint(directory)


# -- checkpoint damage reached past the manifest (as if the damage predates it, or the manifest was redone)


def momentum_line_model():
    model = line_model()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def saved_checkpoint(ctx, epochs=1, steps=2):
    """A fitted line model's checkpoint directory (2 steps per epoch) and its latest path."""
    model = momentum_line_model()
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.zeros((8, 3), "float32")
    directory = ctx.tmp_path / "ckpt"
    model.fit(x, y, batch_size=8 // steps, epochs=epochs, verbose=0, callbacks=[checkpointing.EpochCheckpoint(directory)])
    return directory, Path(checkpointing.latest_checkpoint(directory))


def rehash(path):
    """Rewrites the manifest so the later checks (not the SHA-256) meet the damage."""
    manifest = {"format": 1, "sha256": {part: files.sha256(path / part) for part in checkpointing.PARTS}}
    (path / checkpointing.MANIFEST).write_text(json.dumps(manifest))


def restore_after(damage):
    def call(ctx):
        directory, path = saved_checkpoint(ctx, epochs=damage.__defaults__[0] if damage.__defaults__ else 1)
        damage(directory, path)
        rehash(path)
        return checkpointing.restore(momentum_line_model(), path, steps_per_epoch=2)
    return call


def truncate_random(directory, path):
    data = (path / checkpointing.RANDOM).read_bytes()
    (path / checkpointing.RANDOM).write_bytes(data[: len(data) // 2])


def garbage_arrays(directory, path):
    (path / checkpointing.ARRAYS).write_bytes(b"\x93NUMPY garbage that is no zip archive" * 4)


def inf_in_an_optimizer_slot(directory, path):
    import h5py

    with h5py.File(path / checkpointing.WEIGHTS, "r+") as f:
        names = []
        f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) and "optimizer" in name
                     and item.dtype.kind == "f" and item.size > 1 else None)
        f[names[0]][...] = np.inf


def epoch_edited(directory, path):
    state = json.loads((path / checkpointing.STATE).read_text())
    state["epoch"] = 3
    (path / checkpointing.STATE).write_text(json.dumps(state))


def earlier_weights(directory, path, epochs=2):
    older = sorted(p for p in directory.iterdir() if p.name.startswith("epoch-"))[0]
    (path / checkpointing.WEIGHTS).write_bytes((older / checkpointing.WEIGHTS).read_bytes())


def odd_state_field(directory, path):
    state = json.loads((path / checkpointing.STATE).read_text())
    state["history"] = {"loss": "low"}
    (path / checkpointing.STATE).write_text(json.dumps(state))


def latest_holding(text):
    def call(ctx):
        directory, _ = saved_checkpoint(ctx)
        (ctx.tmp_path / "outside").mkdir()
        (directory / checkpointing.LATEST).write_bytes(text)
        return checkpointing.latest_checkpoint(directory)
    return call


def latest_as_directory(ctx):
    directory, _ = saved_checkpoint(ctx)
    (directory / checkpointing.LATEST).unlink()
    (directory / checkpointing.LATEST).mkdir()
    return checkpointing.latest_checkpoint(directory)


def nothing_usable_left(ctx):
    directory, path = saved_checkpoint(ctx)
    (path / checkpointing.WEIGHTS).write_bytes(b"garbage")
    return checkpointing.restore_latest(momentum_line_model(), directory)


def record_then(change, **kwargs):
    def call(ctx):
        config = config_lib.base_config()
        with workdir_lib.open_workdir(ctx.tmp_path / "run", config):
            (ctx.tmp_path / "run" / "checkpoints" / "subspace").mkdir(parents=True)
            (ctx.tmp_path / "run" / "checkpoints" / "subspace" / "latest").write_text("epoch-00001")
        change(config)
        with workdir_lib.open_workdir(ctx.tmp_path / "run", config, **kwargs):
            pass
    return call


def test_a_change_in_a_section_the_method_does_not_read_resumes_the_same_workdir(tmp_path):
    config = config_lib.base_config()  # method "subspace": reads subspace.*, not baseline.* or spro.*
    with workdir_lib.open_workdir(tmp_path, config):
        (tmp_path / "checkpoints" / "subspace").mkdir(parents=True)
        (tmp_path / "checkpoints" / "subspace" / "latest").write_text("epoch-00001")
    config.baseline.swa_lr, config.spro.lmbda = 0.01, 0.5
    with workdir_lib.open_workdir(tmp_path, config) as record:
        assert [e["event"] for e in record["events"]] == ["created"]
    config.subspace.beta = 2.0
    with pytest.raises(workdir_lib.WorkdirError, match=r"config\.subspace\.beta=1\.0, this run has 2\.0"):
        with workdir_lib.open_workdir(tmp_path, config):
            pass


def locked_twice(ctx):
    config = config_lib.base_config()
    with workdir_lib.open_workdir(ctx.tmp_path / "run", config):
        with workdir_lib.open_workdir(ctx.tmp_path / "run", config):
            pass


def workdir_is_a_file(ctx):
    (ctx.tmp_path / "file").write_text("x")
    with workdir_lib.open_workdir(ctx.tmp_path / "file", config_lib.base_config()):
        pass


def broken_record(ctx):
    (ctx.tmp_path / "run").mkdir()
    (ctx.tmp_path / "run" / workdir_lib.RECORD).write_text("{half")
    with workdir_lib.open_workdir(ctx.tmp_path / "run", config_lib.base_config()):
        pass


def unfreeze_after_fit(ctx):
    model = compiled_line_model()
    model.freeze_points([0])
    model.fit(np.zeros((4, 4), "float32"), np.zeros((4, 3), "float32"), verbose=0)
    return model.freeze_points([1])


def set_learning_rate(value):
    def change(config):
        config.train.learning_rate = value
    return change


def set_epochs(value):
    def change(config):
        config.train.epochs = value
    return change


def set_method(value):
    def change(config):
        config.method = value
    return change


def sweep_with(**kwargs):
    model, data = line_model(), xy_dataset()
    return ts.evaluate.sweep(model, data, batchnorm_data=data, **kwargs)


# ---------------------------------------------------------------- the catalogue

# (id, exception, regex the one-line message must match, call(ctx)).
CATALOGUE = [
    # -- shapes --------------------------------------------------------------
    ("bezier_negative_bends", ValueError, r"`num_bends` must be an integer >= 0, got -1",
     lambda ctx: ts.Bezier(num_bends=-1)),
    ("polychain_float_bends", ValueError, r"`num_bends` must be an integer >= 0, got 1\.5",
     lambda ctx: ts.PolyChain(num_bends=1.5)),
    ("bezier_string_bends", ValueError, r"`num_bends` must be an integer >= 0, got '2'",
     lambda ctx: ts.Bezier(num_bends="2")),
    ("bezier_bool_bends", ValueError, r"`num_bends` must be an integer >= 0, got True",
     lambda ctx: ts.Bezier(num_bends=True)),
    ("simplex_one_vertex", ValueError, r"`num_vertices` must be an integer >= 2, got 1",
     lambda ctx: ts.Simplex(num_vertices=1)),
    ("simplex_float_vertices", ValueError, r"`num_vertices` must be an integer >= 2, got 3\.0",
     lambda ctx: ts.Simplex(num_vertices=3.0)),
    ("line_alpha_above_one", ValueError, r"`alpha` for Line\(\) must be in \[0, 1\], got 1\.5",
     lambda ctx: ts.Line().coefficients(1.5)),
    ("bezier_alpha_negative", ValueError, r"`alpha` for Bezier\(num_bends=1\) must be in \[0, 1\], got -0\.1",
     lambda ctx: ts.Bezier(1).coefficients(-0.1)),
    ("polychain_alpha_nan", ValueError, r"`alpha` .* must be in \[0, 1\], got nan",
     lambda ctx: ts.PolyChain(2).coefficients(float("nan"))),
    ("line_alpha_inf_in_batch", ValueError, r"`alpha` .* must be in \[0, 1\], got inf",
     lambda ctx: ts.Line().coefficients([0.2, float("inf")])),
    ("line_alpha_not_a_number", ValueError, r"`alpha` for Line\(\) must be a number in \[0, 1\], got 'half'",
     lambda ctx: ts.Line().coefficients("half")),
    ("simplex_alpha_wrong_length", ValueError,
     r"`alpha` for Simplex\(num_vertices=3\) must be a vector of 3 non-negative weights summing to 1, got shape \(2,\)",
     lambda ctx: ts.Simplex(3).coefficients([0.5, 0.5])),
    ("simplex_alpha_not_summing_to_one", ValueError, r"`alpha` .* must sum to 1 .*got sum 1\.2",
     lambda ctx: ts.Simplex(3).coefficients([0.5, 0.6, 0.1])),
    ("simplex_alpha_nan", ValueError, r"`alpha` .* must have finite non-negative entries, got \[nan",
     lambda ctx: ts.Simplex(3).coefficients([float("nan"), 0.5, 0.5])),
    ("simplex_alpha_negative", ValueError, r"`alpha` .* must have finite non-negative entries, got \[-0\.5",
     lambda ctx: ts.Simplex(3).coefficients([-0.5, 1.0, 0.5])),
    ("unknown_shape_name", ValueError, r"`shape` must be .* one of \['bezier', 'line', 'polychain', 'simplex'\], got 'torus'",
     lambda ctx: ts.get_shape("torus")),
    # -- sampler -------------------------------------------------------------
    ("sampler_unknown_sampling", ValueError, r"`sampling` must be one of \('per_batch', 'per_layer'\), got 'per_epoch'",
     lambda ctx: ts.Sampler(ts.Line(), 2, sampling="per_epoch")),
    ("sampler_zero_layers", ValueError, r"`num_layers` must be an integer >= 1, got 0",
     lambda ctx: ts.Sampler(ts.Line(), 0)),
    # -- convert -------------------------------------------------------------
    ("convert_unrebuildable_layer", ValueError,
     r"cannot place in a subspace, because they cannot be rebuilt from their config .*: opaque \(Opaque: ",
     lambda ctx: ts.convert(
         keras.Sequential([keras.Input((4,)), Opaque(helper=object(), name="opaque")]), ts.Line())),
    ("convert_no_trainable_weights", ValueError, r"`model` 'relu_only' has no trainable weights",
     lambda ctx: ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.ReLU()], name="relu_only"), ts.Line())),
    ("convert_unbuilt_model", ValueError, r"`model` 'unbuilt' is not built: give it a keras\.Input",
     lambda ctx: ts.convert(keras.Sequential([keras.layers.Dense(2)], name="unbuilt"), ts.Line())),
    ("convert_subclassed_model_without_config", ValueError, r"subclassed \(Subclassed: TypeError",
     lambda ctx: ts.convert(built_subclassed(), ts.Line())),
    ("convert_negative_beta", ValueError, r"`beta` must be a finite number >= 0, got -1\.0",
     lambda ctx: ts.convert(dense_net(), ts.Line(), beta=-1.0)),
    ("convert_nan_beta", ValueError, r"`beta` must be a finite number >= 0, got nan",
     lambda ctx: ts.convert(dense_net(), ts.Line(), beta=float("nan"))),
    ("convert_unknown_sampling", ValueError, r"`sampling` must be one of \('per_batch', 'per_layer'\), got 'per_step'",
     lambda ctx: ts.convert(dense_net(), ts.Line(), sampling="per_step")),
    ("convert_unknown_init", ValueError, r"`init` must be one of \('independent', 'point'\), got 'zeros'",
     lambda ctx: ts.convert(dense_net(), ts.Line(), init="zeros")),
    ("convert_negative_seed", ValueError, r"`seed` must be an integer in \[0, 2\*\*31 - 2\] or None, got -3",
     lambda ctx: ts.convert(dense_net(), ts.Line(), seed=-3)),
    ("convert_string_instead_of_model", TypeError, r"`model` must be a keras\.Model, got str",
     lambda ctx: ts.convert("model.keras", ts.Line())),
    ("convert_layer_instead_of_model", TypeError, r"`model` must be a keras\.Model, got Dense",
     lambda ctx: ts.convert(keras.layers.Dense(3), ts.Line())),
    # -- SubspaceModel -------------------------------------------------------
    ("set_alpha_outside_line", ValueError, r"`alpha` for Line\(\) must be in \[0, 1\], got 2\.0",
     lambda ctx: line_model().set_alpha(2.0)),
    ("set_alpha_vector_on_line", ValueError, r"`alpha` for Line\(\) must be a scalar in \[0, 1\], got shape \(2,\)",
     lambda ctx: line_model().set_alpha([0.3, 0.7])),
    ("set_alpha_scalar_on_simplex", ValueError, r"`alpha` for Simplex\(num_vertices=3\) must be a vector of 3 .*got shape \(\)",
     lambda ctx: simplex_model().set_alpha(0.5)),
    ("set_alpha_simplex_sum", ValueError, r"`alpha` .* must sum to 1",
     lambda ctx: simplex_model().set_alpha([0.2, 0.2, 0.2])),
    ("subspace_model_without_subspace_layers", ValueError, r"`network` has no subspace layers; .*ts\.convert",
     lambda ctx: ts.SubspaceModel(dense_net(), ts.Line())),
    ("subspace_model_shape_mismatch", ValueError, r"`shape` Bezier\(num_bends=1\) needs layers with num_points=3",
     lambda ctx: ts.SubspaceModel(line_model().network, ts.Bezier(1))),
    ("freeze_points_out_of_range", ValueError, r"`indices` must be a list of point indices in \[0, 1\], got \[5\]",
     lambda ctx: line_model().freeze_points([5])),
    # -- configs (validated before any data is loaded) -----------------------
    ("config_negative_epochs", ValueError, r"config\.train\.epochs must be an integer >= 1, got -1",
     lambda ctx: config_lib.validate(locked_config(train__epochs=-1))),
    ("config_batch_size_zero", ValueError, r"config\.train\.batch_size must be an integer >= 1, got 0",
     lambda ctx: config_lib.validate(locked_config(train__batch_size=0))),
    ("config_unknown_dataset", ValueError, r"config\.dataset\.name must be one of \('fashion_mnist', .*got 'imagenet'",
     lambda ctx: config_lib.validate(locked_config(dataset__name="imagenet"))),
    ("config_unknown_model", ValueError, r"config\.model\.name must be one of \('mlp', 'small_cnn', 'cresnet20', 'resnet18', 'resnet50', 'wide_resnet50_2'\), got 'vgg'",
     lambda ctx: config_lib.validate(locked_config(model__name="vgg"))),
    ("config_unknown_method", ValueError, r"config\.method must be one of \('standard', 'subspace', .*'swa'.*\), got 'mc_dropout'",
     lambda ctx: config_lib.validate(locked_config(method="mc_dropout"))),
    ("config_label_noise_outside_unit_interval", ValueError, r"config\.dataset\.label_noise must be .*\[0, 1\].*got 1\.5",
     lambda ctx: config_lib.validate(locked_config(dataset__label_noise=1.5))),
    ("config_negative_beta", ValueError, r"config\.subspace\.beta must be a finite number >= 0, got -1\.0",
     lambda ctx: config_lib.validate(locked_config(subspace__beta=-1.0))),
    ("config_eval_alpha_outside", ValueError, r"config\.eval\.alphas must be a non-empty list of numbers in \[0, 1\]",
     lambda ctx: config_lib.validate(locked_config(eval__alphas=(0.0, 1.5)))),
    # -- data (tmp files only; tensorflow_datasets replaced by an offline fake) --
    ("data_missing_files_say_what_to_install", FileNotFoundError,
     r"Fashion-MNIST is not available: .*`apt-get install dataset-fashion-mnist`",
     lambda ctx: data_lib.load_arrays("fashion_mnist")),
    ("data_dir_that_does_not_exist", FileNotFoundError, r"data_dir '.*/nonexistent' does not exist or is not a directory",
     lambda ctx: data_lib.load_arrays("fashion_mnist", data_dir=ctx.tmp_path / "nonexistent")),
    ("data_corrupt_idx", ValueError, r"train-images-idx3-ubyte: bad IDX magic number .*first two bytes must be zero",
     corrupt_idx),
    ("data_truncated_idx", ValueError, r"t10k-labels-idx1-ubyte: IDX file is truncated: .*should be 108 bytes long, but it is 101 bytes",
     truncated_idx),
    ("data_corrupt_gzip", ValueError, r"t10k-images-idx3-ubyte\.gz: corrupt or truncated gzip data",
     corrupt_gzip_idx),
    ("data_checksum_mismatch", ValueError, r"-idx[13]-ubyte\.gz: SHA-256 .* does not match Fashion-MNIST: expected [0-9a-f]{64}, actual",
     checksum_mismatch),
    ("data_unknown_dataset", ValueError, r"Unknown dataset name 'imagenet'; allowed names: 'fashion_mnist', 'mnist'",
     lambda ctx: data_lib.load_arrays("imagenet")),
    ("data_batch_size_zero", ValueError, r"`batch_size` must be an integer >= 1, got 0",
     lambda ctx: data_lib.build_datasets("fashion_mnist", batch_size=0)),
    ("data_imagenet_not_prepared", FileNotFoundError,
     r"ImageNet \(imagenet2012\) is not prepared in .*: download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar",
     lambda ctx: data_lib.build_datasets("imagenet2012", batch_size=4, data_dir=ctx.tmp_path)),
    ("data_tiny_imagenet_missing", FileNotFoundError,
     r"Tiny-ImageNet needs config.dataset.data_dir: download http://cs231n.stanford.edu/tiny-imagenet-200.zip",
     lambda ctx: data_lib.build_datasets("tiny_imagenet", batch_size=4)),
    # -- export ----------------------------------------------------------------
    ("export_alpha_outside", ValueError, r"`alpha` for Line\(\) must be in \[0, 1\], got 1\.5",
     lambda ctx: line_model().export(ctx.tmp_path / "serving", alpha=1.5)),
    ("export_alpha_nan", ValueError, r"`alpha` .* must be in \[0, 1\], got nan",
     lambda ctx: line_model().export(ctx.tmp_path / "serving", alpha=float("nan"))),
    ("export_unwritable_path", ValueError, r"`filepath` .*serving/1' is not writable: .*a_file' is a file",
     export_into_a_file),
    ("bake_simplex_wrong_length", ValueError, r"`alpha` for Simplex\(num_vertices=3\) must be a vector of 3",
     lambda ctx: simplex_model().bake([0.5, 0.5])),
    # -- batch norm recompute ------------------------------------------------
    ("recompute_batchnorm_steps_zero", ValueError, r"`steps` must be an integer >= 1 or None, got 0",
     lambda ctx: ts.recompute_batchnorm(bn_net(), np.ones((8, 4), "float32"), steps=0)),
    ("recompute_batchnorm_steps_float", ValueError, r"`steps` must be an integer >= 1 or None, got 2\.5",
     lambda ctx: ts.recompute_batchnorm(bn_net(), np.ones((8, 4), "float32"), steps=2.5)),
    ("recompute_batchnorm_batch_size_zero", ValueError, r"`batch_size` must be an integer >= 1, got 0",
     lambda ctx: ts.recompute_batchnorm(bn_net(), np.ones((8, 4), "float32"), batch_size=0)),
    ("recompute_batchnorm_alpha_on_plain_model", ValueError, r"`alpha` is only meaningful for a ts\.SubspaceModel; pass alpha=None",
     lambda ctx: ts.recompute_batchnorm(bn_net(), np.ones((8, 4), "float32"), alpha=0.5)),
    ("recompute_batchnorm_alpha_outside", ValueError, r"`alpha` for Line\(\) must be in \[0, 1\], got -1\.0",
     lambda ctx: ts.recompute_batchnorm(line_model(), np.ones((8, 4), "float32"), alpha=-1.0)),
    # -- evaluation and metrics ----------------------------------------------
    ("sweep_temperature_zero", ValueError, r"`temperature` must be a finite number > 0, got 0",
     lambda ctx: sweep_with(temperature=0)),
    ("sweep_alphas_outside", ValueError, r"`alphas` for Line\(\) must be in \[0, 1\], got 1\.5",
     lambda ctx: sweep_with(alphas=[0.5, 1.5])),
    ("ensemble_negative_temperature", ValueError, r"`temperature` must be a finite number > 0, got -1\.0",
     lambda ctx: ts.evaluate.ensemble([dense_net()], xy_dataset(), temperature=-1.0)),
    ("ensemble_no_members", ValueError, r"`members` must hold at least one model or point",
     lambda ctx: ts.evaluate.ensemble([], xy_dataset())),
    ("ensemble_member_outside", ValueError, r"`members` for Line\(\) must be in \[0, 1\], got 3\.0",
     lambda ctx: ts.evaluate.ensemble([0.5, 3.0], xy_dataset(), model=line_model(), batchnorm_data=xy_dataset())),
    ("random_points_k_zero", ValueError, r"`k` must be an integer >= 1, got 0",
     lambda ctx: ts.evaluate.random_points(line_model(), 0)),
    ("fit_temperature_no_members", ValueError, r"`model_or_members` must be a model or a non-empty list of models",
     lambda ctx: ts.evaluate.fit_temperature([], xy_dataset())),
    ("fit_temperature_bad_bounds", ValueError, r"`bounds` must be \(low, high\) with 0 < low < high, got \(2\.0, 1\.0\)",
     lambda ctx: ts.evaluate.fit_temperature(dense_net(), xy_dataset(), bounds=(2.0, 1.0))),
    ("ece_zero_bins", ValueError, r"`?num_bins`? must be an int >= 1, got 0",
     lambda ctx: ts.metrics.ExpectedCalibrationError(num_bins=0)),
    ("ece_from_logits_not_bool", ValueError, r"`from_logits` must be None \(read from the model\), True or False, got 'yes'",
     lambda ctx: ts.metrics.ExpectedCalibrationError(from_logits="yes")),
    # -- evaluation data, points and models (issue 11, issue 13 item 4) -------
    ("sweep_data_without_labels", ValueError, r"`test_data` yields only inputs x, no labels; evaluation needs \(x, y\) batches",
     lambda ctx: ts.evaluate.sweep(line_model(), x_only_dataset(), batchnorm_data=xy_dataset())),
    ("ensemble_data_without_labels", ValueError, r"`test_data` yields only inputs x, no labels",
     lambda ctx: ts.evaluate.ensemble([dense_net()], x_only_dataset())),
    ("sweep_unbatched_data", ValueError, r"`test_data` is not batched \(one label per element\); call `\.batch",
     lambda ctx: ts.evaluate.sweep(line_model(), xy_dataset().unbatch(), batchnorm_data=xy_dataset())),
    ("sweep_empty_alphas", ValueError, r"`alphas` must hold at least one point α, got an empty list",
     lambda ctx: sweep_with(alphas=[])),
    ("sweep_bool_alpha", ValueError, r"`alphas` must hold numbers α, got the bool True",
     lambda ctx: sweep_with(alphas=[True])),
    ("sweep_eager_tensor_alpha_outside", ValueError, r"`alphas` for Line\(\) must be in \[0, 1\], got 1\.5",
     lambda ctx: sweep_with(alphas=[tf.constant(1.5)])),
    ("sweep_plain_keras_model", ValueError, r"`model` must be a ts\.SubspaceModel \(points α need a subspace\), got a plain keras\.Model",
     lambda ctx: ts.evaluate.sweep(dense_net(), xy_dataset(), batchnorm_data=xy_dataset())),
    ("sweep_labels_out_of_range", ValueError, r"`test_data` labels must lie in \[0, 3\) for a model with 3 classes, got 0\.\.7",
     lambda ctx: ts.evaluate.sweep(line_model(), (np.ones((8, 4), "float32"), np.arange(8)), batchnorm_data=xy_dataset())),
    ("sweep_from_logits_not_bool", ValueError, r"`from_logits` must be None \(read from the model\), True or False, got 'yes'",
     lambda ctx: sweep_with(from_logits="yes")),
    ("ensemble_points_without_model", ValueError, r"`members\[0\]` is a float, not a keras\.Model; .*pass `model=` too",
     lambda ctx: ts.evaluate.ensemble([0.5, 0.7], xy_dataset())),
    ("ensemble_different_class_counts", ValueError, r"ensemble members must predict the same number of classes, got \[3, 5\]",
     lambda ctx: ts.evaluate.ensemble([dense_net(), five_class_net()], xy_dataset())),
    ("ensemble_generator_data", ValueError, r"`test_data` must be a tf\.data\.Dataset or an \(x, y\) tuple of arrays, got a generator",
     lambda ctx: ts.evaluate.ensemble([dense_net()], (batch for batch in xy_dataset()))),
    ("ood_points_without_alphas", ValueError, r"`model_or_members` must be a keras\.Model or a non-empty list of them",
     lambda ctx: ts.evaluate.ood([0.5], np.ones((4, 4), "float32"), np.ones((4, 4), "float32"))),
    ("set_point_both", ValueError, r"pass exactly one of `alpha` \(a point of the shape\) or `coefficients`",
     lambda ctx: line_model().set_point(alpha=0.5, coefficients=[0.5, 0.5])),
    ("set_point_wrong_length", ValueError, r"`coefficients` must be 2 finite numbers, got \[1\.0, 0\.0, 0\.0\]",
     lambda ctx: line_model().set_point(coefficients=[1.0, 0.0, 0.0])),
    ("plane_collinear_points", ValueError, r"`points` must not be collinear: points\[2\] lies on the line through points\[0\] and points\[1\]",
     lambda ctx: ts.plane([0.0, 1.0, 0.5], line_model(), xy_dataset())),
    ("plane_coincident_points", ValueError, r"`points` must be three distinct weight points; points\[0\] and points\[1\] are equal",
     lambda ctx: ts.plane([0.3, 0.3, 1.0], line_model(), xy_dataset())),
    ("recompute_batchnorm_infinite_data", ValueError, r"`data` is infinite \(e\.g\. `\.repeat\(\)`\): pass `steps`",
     lambda ctx: ts.recompute_batchnorm(bn_net(), xy_dataset().repeat())),
    ("recompute_batchnorm_non_finite", ValueError, r"`data` holds non-finite inputs \(NaN or inf\): batch-norm statistics would be NaN, so they are refused",
     lambda ctx: ts.recompute_batchnorm(bn_net(), np.array([[np.nan, 0, 0, 0]] + [[1.0] * 4] * 7, "float32"))),
    ("recompute_batchnorm_unbatched", ValueError, r"`data` is not batched: its elements have shape \(4,\) and the model takes \(None, 4\)",
     lambda ctx: ts.recompute_batchnorm(bn_net(), xy_dataset().unbatch())),
    ("recompute_batchnorm_generator", ValueError, r"`data` must be a tf\.data\.Dataset or an \(x, y\) tuple of arrays, got a generator; wrap",
     lambda ctx: ts.recompute_batchnorm(bn_net(), (x for x in np.ones((2, 8, 4), "float32")))),
    ("recompute_batchnorm_dict_of_other_inputs", ValueError, r"`data` yields dicts with keys \['pixels'\], which are not the model's inputs",
     lambda ctx: ts.recompute_batchnorm(bn_net(), {"pixels": np.ones((8, 4), "float32")})),
    # -- connecting trained networks, label noise ----------------------------
    ("connect_architectures_differ", ValueError,
     r"`model_b` does not match `model_a` at weighted layer 0 \('head' vs 'head'\): weight 'kernel' has shape \(5, 3\) vs \(4, 3\)",
     lambda ctx: ts.connectivity.connect(dense_net(4), dense_net(5), ts.Bezier(1), seed=0)),
    ("connect_simplex_shape", ValueError, r"`shape` must be a curve \(ts\.Line\(\), ts\.Bezier\(n\) or ts\.PolyChain\(n\)\)",
     lambda ctx: ts.connectivity.connect(dense_net(), dense_net(), ts.Simplex(3), seed=0)),
    ("label_noise_fraction_above_one", ValueError, r"`fraction` must be a number in \[0, 1\], got 1\.5",
     lambda ctx: label_noise.corrupt_labels(np.arange(10) % 3, 1.5, num_classes=3)),
    # -- checkpoints (issue 6 item 1) -------------------------------------------
    ("checkpoint_corrupt_weights", checkpointing.CheckpointError,
     r"epoch-00001/model\.weights\.h5 is damaged: its SHA-256 does not match manifest\.json",
     checkpoint_with_corrupt_weights),
    ("checkpoint_latest_incomplete", checkpointing.CheckpointError,
     r"latest names 'epoch-00001', which is not a complete checkpoint; no older checkpoint is complete",
     checkpoint_latest_points_at_incomplete),
    # -- issue 13: silent wrong values, numpy scalars, seeds ---------------------
    ("line_alpha_eager_tensor_outside", ValueError, r"`alpha` for Line\(\) must be in \[0, 1\], got 5\.0",
     lambda ctx: ts.Line().coefficients(tf.constant(5.0))),
    ("simplex_alpha_eager_tensor_off_simplex", ValueError, r"`alpha` .* must sum to 1",
     lambda ctx: ts.Simplex(3).coefficients(tf.constant([0.5, 0.5, 0.5]))),
    ("set_alpha_bool", ValueError, r"`alpha` for Line\(\) must be a number in \[0, 1\], got True",
     lambda ctx: line_model().set_alpha(True)),
    ("coefficients_bool_in_a_batch", ValueError, r"`alpha` for Line\(\) must be a number in \[0, 1\], got \[True, 0\.5\]",
     lambda ctx: ts.Line().coefficients([True, 0.5])),
    ("freeze_points_change_after_the_optimizer_is_built", ValueError,
     r"`indices` \[1\] would change the frozen points \[0\] after the optimizer is built.*compile again",
     unfreeze_after_fit),
    ("freeze_points_float_index", ValueError, r"`indices` must be a list of point indices in \[0, 1\], got \[1\.0\]",
     lambda ctx: line_model().freeze_points([1.0])),
    ("convert_seed_above_range", ValueError, r"`seed` must be an integer in \[0, 2\*\*31 - 2\] or None, got 3000000000",
     lambda ctx: ts.convert(dense_net(), ts.Line(), seed=3_000_000_000)),
    ("convert_bool_beta", ValueError, r"`beta` must be a finite number >= 0, got True",
     lambda ctx: ts.convert(dense_net(), ts.Line(), beta=True)),
    ("config_seed_above_range", ValueError, r"config\.seed must be an integer in \[0, 2\*\*31 - 2\], got 4294967296",
     lambda ctx: config_lib.validate(locked_config(seed=4294967296))),
    ("config_derived_seed_above_range", ValueError, r"config\.seed must be <= 2147483645 for method 'connect'",
     lambda ctx: config_lib.validate(locked_config(method="connect", seed=2**31 - 2))),
    ("config_model_kwarg_unknown", ValueError, r"config\.model\.kwargs\.widht is not an argument of small_cnn; allowed: \[.*'width'",
     lambda ctx: config_lib.validate(config_with_kwargs(widht=8))),
    ("data_seed_above_range", ValueError, r"`seed` must be an integer in \[0, 2\*\*31 - 2\], got 3000000000",
     lambda ctx: data_lib.build_datasets("fashion_mnist", batch_size=8, seed=3_000_000_000)),
    ("data_label_noise_nan", ValueError, r"`label_noise` must be a finite number in \[0, 1\], got nan",
     lambda ctx: data_lib.build_datasets("fashion_mnist", batch_size=8, label_noise=float("nan"))),
    # -- issue 13: checkpoints are verified before use --------------------------
    ("checkpoint_truncated_random_npz", checkpointing.CheckpointError,
     r"cannot read .*random\.npz: not a valid \.npz archive of arrays", restore_after(truncate_random)),
    ("checkpoint_garbage_callback_arrays", checkpointing.CheckpointError,
     r"cannot read .*callback_arrays\.npz: not a valid \.npz archive of arrays \((?!.*allow_pickle)", restore_after(garbage_arrays)),
    ("checkpoint_inf_optimizer_slot", checkpointing.CheckpointError,
     r"model\.weights\.h5 holds non-finite values in .*", restore_after(inf_in_an_optimizer_slot)),
    ("checkpoint_epoch_number_edited", checkpointing.CheckpointError,
     r"state\.json: `epoch` must be 1 \(the checkpoint directory's epoch\), got 3", restore_after(epoch_edited)),
    ("checkpoint_earlier_weights_under_a_later_state", checkpointing.CheckpointError,
     r"model\.weights\.h5 is at optimizer step 2, but state\.json says epoch 2 \(4 steps of 2\)",
     restore_after(earlier_weights)),
    ("checkpoint_odd_state_field", checkpointing.CheckpointError,
     r"state\.json: `history\.loss` must be a list of at most 1 numbers, got 'low'", restore_after(odd_state_field)),
    ("checkpoint_latest_escapes_the_directory", checkpointing.CheckpointError,
     r"latest names 'epoch-00002/\.\./\.\./\.\./outside/x', not a checkpoint directory epoch-NNNNN",
     latest_holding(b"epoch-00002/../../../outside/x")),
    ("checkpoint_latest_absolute_path", checkpointing.CheckpointError, r"latest names '/etc', not a checkpoint directory",
     latest_holding(b"/etc")),
    ("checkpoint_latest_binary", checkpointing.CheckpointError, r"latest does not hold a checkpoint name \(binary content\)",
     latest_holding(b"\xff\xfe\x00garbage")),
    ("checkpoint_latest_is_a_directory", checkpointing.CheckpointError, r"latest is not a regular file",
     latest_as_directory),
    ("checkpoint_nothing_usable_left", checkpointing.CheckpointError,
     r"no usable checkpoint in .*ckpt: .*model\.weights\.h5 is damaged.*start afresh with --restart",
     nothing_usable_left),
    # -- issue 13: a workdir belongs to one config ----------------------------------
    ("workdir_learning_rate_changed", workdir_lib.WorkdirError,
     r"run was created with config\.train\.learning_rate=0\.1, this run has 0\.01; pass --restart",
     record_then(set_learning_rate(0.01))),
    ("workdir_epochs_grown_without_extend", workdir_lib.WorkdirError,
     r"created with config\.train\.epochs=10, this run has 12; pass --extend to train on, --restart",
     record_then(set_epochs(12))),
    ("workdir_extend_to_fewer_epochs", workdir_lib.WorkdirError,
     r"--extend needs config\.train\.epochs above the recorded 10, got 8", record_then(set_epochs(8), extend=True)),
    ("workdir_extend_other_change", workdir_lib.WorkdirError, r"created with config\.method=\"subspace\", this run has \"swa\"",
     record_then(set_method("swa"), extend=True)),
    ("workdir_locked_by_another_run", workdir_lib.WorkdirError,
     r"another run \(pid \d+\) is using --workdir .*run; wait for it to end or use another --workdir", locked_twice),
    ("workdir_is_a_file", workdir_lib.WorkdirError, r"--workdir .*file exists and is not a directory", workdir_is_a_file),
    ("workdir_empty_name", workdir_lib.WorkdirError, r"--workdir must name a directory, got ''",
     lambda ctx: workdir_lib.open_workdir("", config_lib.base_config()).__enter__()),
    ("workdir_broken_record", workdir_lib.WorkdirError, r"cannot read .*workdir\.json: .*; pass --restart", broken_record),
    # -- model zoo -------------------------------------------------------------
    ("zoo_unknown_model", ValueError, r"`name` must be one of \['mlp', 'small_cnn', 'cresnet20', 'resnet18', 'resnet50', 'wide_resnet50_2'\], got 'vgg'",
     lambda ctx: get_model("vgg")),
    ("zoo_zero_width", ValueError, r"`width` must be an int >= 1, got 0",
     lambda ctx: get_model("small_cnn", width=0)),
    ("zoo_unknown_keyword", TypeError, r"`widht` is not an argument of small_cnn; allowed: \[.*'width'",
     lambda ctx: get_model("small_cnn", widht=8)),
]


def test_catalogue_has_at_least_30_distinct_entries():
    ids = [entry[0] for entry in CATALOGUE]
    assert len(ids) == len(set(ids)) and len(ids) >= 30


@pytest.mark.parametrize("error, match, call", [entry[1:] for entry in CATALOGUE], ids=[e[0] for e in CATALOGUE])
def test_bad_input_gives_one_clear_error_from_tfsubspace(ctx, error, match, call):
    assert_clear_error(error, match, call, ctx)


# ---------------------------------------------------------------- errors from the libraries we build on
#
# These come from ml_collections / Keras, not tfsubspace, so only their
# clarity is pinned here (see the notes in each test).


def test_misspelt_key_in_a_locked_config_is_refused_with_a_suggestion():
    config = config_lib.base_config()
    config.lock()
    # ml_collections raises AttributeError (not ValueError); for a nested key the
    # message names the key, lists the section's fields and suggests the fix.
    with pytest.raises(AttributeError, match=r'Key "epoch" does not exist and cannot be added since the config is locked') as info:
        config.train.epoch = 3
    assert 'Did you mean "epochs" instead of "epoch"?' in str(info.value)
    with pytest.raises(AttributeError, match=r'Did you mean "train" instead of "trian"\?'):
        config.trian = ml_collections_dict()
    with pytest.raises(AttributeError, match=r'Did you mean "batch_size"'):
        config.train.batchsize  # noqa: B018 - reading a misspelt key fails too


def ml_collections_dict():
    import ml_collections

    return ml_collections.ConfigDict({"epochs": 3})


def test_wrong_type_for_a_config_field_is_refused():
    config = config_lib.base_config()
    config.lock()
    with pytest.raises(TypeError, match=r"Could not override field 'epochs'.*cannot be casted to type <class 'int'>"):
        config.train.epochs = "ten"


def test_corrupt_keras_file_fails_with_a_one_line_error_naming_the_file(tmp_path):
    # Keras says "File not found" for a file that exists but is not a zip; the
    # message names the path and the expected format, in one line. A
    # `ts.load_model` wrapper could say "corrupt" instead (see BUILD_NOTES).
    path = tmp_path / "x.keras"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(ValueError, match=r"filepath=.*x\.keras.*`\.keras` zip file") as info:
        keras.models.load_model(path)
    assert "\n" not in str(info.value)


def test_truncated_keras_file_of_a_subspace_model_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    line_model().save(path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"model\.keras"):
        keras.models.load_model(path)


# ---------------------------------------------------------------- loading never executes code (issue 6, item 5)

UNSAFE_PATTERNS = {
    "pickle": r"\bimport\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b|\bfrom\s+(c?pickle|dill|cloudpickle)\b"
              r"|\bpickle\.(loads?|dumps?|Unpickler|Pickler)\b",
    "numpy pickles": r"allow_pickle\s*=\s*True",
    "eval/exec": r"(?<![\w.])(eval|exec)\s*\(",
    "safe_mode off": r"safe_mode\s*=\s*False",
    "unsafe deserialization": r"enable_unsafe_deserialization|SafeModeScope\s*\(\s*(safe_mode\s*=\s*)?False",
    "yaml objects": r"yaml\.(unsafe_)?load\s*\((?![^)]*SafeLoader)",
}


def test_library_source_has_no_pickle_eval_exec_or_unsafe_deserialization():
    found = []
    for path in sorted(Path(PACKAGE_DIR).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for what, pattern in UNSAFE_PATTERNS.items():
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(PACKAGE_DIR)}:{line}: {what}: {match.group(0)!r}")
    assert not found, found


def subspace_model_with_lambda():
    inputs = keras.Input((4,))
    x = ts.layers.SubspaceDense(3, num_points=2, name="head")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    return ts.SubspaceModel(keras.Model(inputs, x), ts.Line(), seed=0)


@pytest.mark.parametrize("safe_mode", [None, True], ids=["default", "explicit"])
def test_keras_file_with_a_lambda_layer_is_refused_in_safe_mode(tmp_path, safe_mode):
    """SubspaceModel.from_config deserializes its network inside Keras' safe-mode scope."""
    path = tmp_path / "lambda.keras"
    subspace_model_with_lambda().save(path)
    kwargs = {} if safe_mode is None else {"safe_mode": safe_mode}
    with pytest.raises(ValueError, match=r"deserialization of a `Lambda` layer.*arbitrary code execution"):
        keras.saving.load_model(path, **kwargs)
    # The archive really holds the pickled-bytecode lambda that safe mode refuses.
    with zipfile.ZipFile(path) as archive:
        assert "__lambda__" in archive.read("config.json").decode()


def test_convert_of_a_model_with_a_lambda_layer_does_not_advise_disabling_safe_mode():
    """In memory there is nothing to deserialize: converting a Lambda must work, or be
    refused by tfsubspace naming the layer, never with Keras' advice to pass
    `safe_mode=False` (which would teach users to load untrusted files unsafely)."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="head")(inputs)
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    source = keras.Model(inputs, outputs, name="with_lambda")
    try:
        model = ts.convert(source, ts.Line(), seed=0, init="point")
    except ValueError as error:
        assert "safe_mode" not in str(error) and "double" in str(error) and "Lambda" in str(error), str(error)
        assert traceback.extract_tb(error.__traceback__)[-1].filename.startswith(PACKAGE_DIR)
    else:
        x = np.ones((2, 4), "float32")
        np.testing.assert_allclose(model(x), source(x), atol=1e-6)


# ---------------------------------------------------------------- ts.load_model: safe, one-line errors


def test_load_model_round_trips_a_subspace_model(tmp_path):
    path = tmp_path / "model.keras"
    model = line_model()
    model.save(path)
    loaded = ts.load_model(path)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad_config", "missing"])
def test_load_model_names_the_file_and_the_damage_in_one_line(tmp_path, damage):
    path = tmp_path / "model.keras"
    line_model().save(path)
    content = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(512))
    elif damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "bad_config":
        with zipfile.ZipFile(path) as archive:
            parts = {name: archive.read(name) for name in archive.namelist()}
        parts["config.json"] = b"{not json"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in parts.items():
                archive.writestr(name, data)
    else:
        path.unlink()
    expected = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(expected, match=r"`filepath` '.*model\.keras'") as info:
        ts.load_model(path)
    assert "\n" not in str(info.value)
    assert traceback.extract_tb(info.value.__traceback__)[-1].filename.startswith(PACKAGE_DIR)


def test_load_model_refuses_code_without_advising_to_disable_safe_mode(tmp_path):
    path = tmp_path / "lambda.keras"
    subspace_model_with_lambda().save(path)
    with pytest.raises(ValueError, match="holds code .* never runs from a file") as info:
        ts.load_model(path)
    assert "safe_mode=False" not in str(info.value)
