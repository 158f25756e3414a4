"""Per-epoch checkpoints that survive a crash, and resuming from them.

`EpochCheckpoint(directory)` writes, at the end of every epoch, one
self-contained checkpoint `directory/epoch-NNNNN/`:

- `model.weights.h5`: every model variable (all subspace copies, batch-norm
  statistics, the inference coefficients) and the optimizer's variables
  (momentum slots and `iterations`, which keys the α sampler and the
  learning-rate schedule);
- `random.npz`: the states of the layers' random seed generators (dropout),
  which Keras' weight files leave out;
- `state.json`: the number of finished epochs, the history so far, the
  seconds trained, and the state of every callback that has
  `get_state()`/`set_state(state)` (e.g. SWA accumulators), whose numpy
  arrays go to `callback_arrays.npz`;
- `manifest.json`, written last: the SHA-256 of the four files above.

A checkpoint is written into a fresh temporary directory and renamed into
place; the pointer file `latest` is then replaced by an atomic rename too. A
kill (or a full disk) at any moment therefore leaves `latest` naming a
complete checkpoint (or no `latest` at all), never a half-written one. With the
data order keyed by epoch (`Datasets.train_epochs`), a resumed run reproduces
the uninterrupted one.

Nothing is loaded unchecked: `restore` verifies the manifest, validates
`state.json` field by field, and checks every loaded weight and optimizer slot
is finite; `restore_latest` skips a damaged newest checkpoint (with a warning
naming it) for the newest good one. `latest` must name a direct child
`epoch-NNNNN` directory. Loading never runs code: weights are HDF5 arrays, the
rest JSON and `.npz` read with `allow_pickle=False`.

Example:

>>> import tempfile, keras, numpy as np, tfsubspace as ts
>>> from tfsubspace.checkpointing import EpochCheckpoint, latest_checkpoint, restore
>>> def make():
...     model = ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), ts.Line(), seed=0)
...     model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
...     return model
>>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
>>> directory = tempfile.mkdtemp()
>>> model = make()
>>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[EpochCheckpoint(directory)])
>>> path = latest_checkpoint(directory); path[-11:]
'epoch-00002'
>>> again = make()
>>> state = restore(again, path)
>>> state["epoch"], int(again.optimizer.iterations.numpy())
(2, 2)
>>> bool(np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0)))
True
"""

import gc
import json
import math
import os
import re
import shutil
import time

import keras
import numpy as np
from absl import logging

from tfsubspace import checks, files

LATEST = "latest"
WEIGHTS = "model.weights.h5"
RANDOM = "random.npz"
STATE = "state.json"
ARRAYS = "callback_arrays.npz"
MANIFEST = "manifest.json"
PARTS = (WEIGHTS, RANDOM, ARRAYS, STATE)
_PREFIX = "epoch-"
_TEMPORARY = ".tmp-"
_NAME = re.compile(r"epoch-(\d{5,})")
# Room left on the disk beyond the raw variable bytes (HDF5 headers, npz, JSON).
_OVERHEAD_BYTES = 256 * 1024


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, damaged or does not fit the model."""


def _seed_generators(model):
    """(name, SeedGenerator) of every layer, in a stable order."""
    found = []
    for layer in model._flatten_layers(include_self=True):
        for attribute, value in sorted(vars(layer).items()):
            if isinstance(value, keras.random.SeedGenerator):
                found.append((f"{layer.path}/{attribute}", value))
    return found


def _epoch_of(name):
    match = _NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def _read_pointer(directory):
    """The checkpoint directory `latest` names (a direct child), or None if there is no `latest`.

    Raises CheckpointError when `latest` is not a small text file naming a
    direct child `epoch-NNNNN` directory: no `..`, no absolute path, no symlink.
    """
    pointer = os.path.join(directory, LATEST)
    if not os.path.lexists(pointer):
        return None
    if os.path.islink(pointer) or not os.path.isfile(pointer):
        raise CheckpointError(f"{pointer} is not a regular file (a symlink or a directory)")
    with open(pointer, "rb") as f:
        raw = f.read(256)
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CheckpointError(f"{pointer} does not hold a checkpoint name (binary content)") from None
    if _epoch_of(name) is None:
        raise CheckpointError(f"{pointer} names {name[:80]!r}, not a checkpoint directory epoch-NNNNN of {directory}")
    path = os.path.join(directory, name)
    if os.path.islink(path) or not os.path.isdir(path):
        raise CheckpointError(f"{pointer} names {name!r}, which is not a checkpoint directory of {directory}")
    return path


def _complete(path):
    return all(os.path.isfile(os.path.join(path, part)) for part in PARTS + (MANIFEST,))


def latest_checkpoint(directory):
    """The path of the checkpoint `latest` names in `directory`, or None if there is none.

    Raises CheckpointError when `latest` is damaged or names an incomplete
    checkpoint (`restore_latest` falls back to an older one instead).
    """
    path = _read_pointer(directory)
    if path is not None and not _complete(path):
        older = [c for c in candidates(directory) if c != path]
        advice = (f"the previous complete one is {os.path.basename(older[0])}" if older
                  else "no older checkpoint is complete; start afresh with --restart")
        raise CheckpointError(f"{os.path.join(directory, LATEST)} names {os.path.basename(path)!r}, "
                              f"which is not a complete checkpoint; {advice}.")
    return path


def candidates(directory):
    """Complete-looking checkpoint directories of `directory`, newest first (those after `latest` excluded)."""
    if not os.path.isdir(directory):
        return []
    try:
        pointed = _read_pointer(directory)
    except CheckpointError:
        pointed = None
    newest = _epoch_of(os.path.basename(pointed)) if pointed else None
    found = []
    for entry in os.listdir(directory):
        epoch, path = _epoch_of(entry), os.path.join(directory, entry)
        if epoch is None or os.path.islink(path) or not os.path.isdir(path) or not _complete(path):
            continue
        if newest is None or epoch <= newest:
            found.append((epoch, path))
    return [path for _, path in sorted(found, reverse=True)]


def _variables_bytes(model):
    variables = list(model.weights) + (list(model.optimizer.variables) if getattr(model, "optimizer", None) else [])
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def _check_free_space(directory, needed):
    """Refuses to start a write the disk cannot hold: h5py does not recover from ENOSPC."""
    try:
        stats = os.statvfs(directory)
    except (OSError, AttributeError):
        return
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise OSError(28, f"No space left on device ({free} bytes free, a checkpoint needs about {needed})",
                      directory)


def save(model, directory, state, callbacks=(), keep=2):
    """Writes a checkpoint of `model` (+ `state` dict) and points `latest` at it.

    The files are written into a fresh temporary directory with a manifest of
    their SHA-256, renamed into place, and only then is `latest` replaced. An
    OSError (a full disk, a read-only file system) leaves the previous
    checkpoints and `latest` as they were.
    """
    name = f"{_PREFIX}{int(state['epoch']):05d}"
    final = commit(directory, name, lambda temporary: _write_parts(model, temporary, state, callbacks))
    files.write_atomically(os.path.join(directory, LATEST), name)
    for entry in sorted(entry for entry in os.listdir(directory) if _epoch_of(entry) is not None)[:-keep]:
        files.remove(os.path.join(directory, entry))
    return final


def commit(directory, name, write):
    """Creates `directory/name` whole or not at all: `write(temporary)` fills a fresh directory, renamed into place.

    Whatever sits at the temporary or final name (a planted symlink, a
    half-written earlier attempt) is removed first, never followed. On any
    failure the temporary directory is deleted and `directory/name` is untouched.
    """
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, _TEMPORARY + name)
    files.remove(temporary)
    os.mkdir(temporary)
    try:
        with files.naming(temporary):
            write(temporary)
    except BaseException:
        gc.collect()  # drop h5py handles of a failed write now, not at interpreter exit
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    final = os.path.join(directory, name)
    files.remove(final)
    os.replace(temporary, final)
    files.fsync_directory(directory)
    return final


def _write_parts(model, temporary, state, callbacks):
    _check_free_space(temporary, 2 * _variables_bytes(model) + _OVERHEAD_BYTES)
    model.save_weights(os.path.join(temporary, WEIGHTS))
    np.savez(
        os.path.join(temporary, RANDOM),
        **{f"s{i}": np.asarray(g.state.numpy()) for i, (_, g) in enumerate(_seed_generators(model))},
    )
    arrays = {}
    full_state = dict(state)
    full_state["callbacks"] = {
        type(callback).__name__: _arrays_out(callback.get_state(), arrays)
        for callback in callbacks
        if hasattr(callback, "get_state")
    }
    # Callback arrays (e.g. SWA's checkpoints) go to .npz, not into JSON lists.
    np.savez(os.path.join(temporary, ARRAYS), **arrays)
    with open(os.path.join(temporary, STATE), "w") as f:
        json.dump(full_state, f, indent=1, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    write_manifest(temporary, PARTS)


def write_manifest(directory, parts):
    """Writes `directory/manifest.json`, the SHA-256 of each of `parts` (written last, after them)."""
    manifest = {"format": 1, "sha256": {part: files.sha256(os.path.join(directory, part)) for part in parts}}
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    files.fsync_directory(directory)


def _arrays_out(value, arrays):
    """`value` with every numpy array replaced by {"__array__": key} (arrays stored in `arrays`)."""
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {k: _arrays_out(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_arrays_out(v, arrays) for v in value]
    return value


def _arrays_in(value, arrays, path):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            if value["__array__"] not in arrays:
                raise CheckpointError(f"{os.path.join(path, STATE)} refers to array {value['__array__']!r}, "
                                      f"which {ARRAYS} does not hold")
            return arrays[value["__array__"]]
        return {k: _arrays_in(v, arrays, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays_in(v, arrays, path) for v in value]
    return value


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"checkpoint state holds a {type(value).__name__}, which JSON cannot store")


def verify(path, parts=PARTS):
    """Checks the manifest's SHA-256 of each of `parts` of the checkpoint at `path`; raises CheckpointError."""
    manifest_path = os.path.join(path, MANIFEST)
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        expected = manifest["sha256"]
        if not isinstance(expected, dict) or set(expected) != set(parts):
            raise ValueError(f"it must list the SHA-256 of {', '.join(parts)}")
    except FileNotFoundError:
        raise CheckpointError(f"{manifest_path} is missing: the checkpoint is incomplete or was not written "
                              "by this version of tfsubspace") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"cannot read {manifest_path}: {_first_line(error)}") from None
    for part in parts:
        part_path = os.path.join(path, part)
        try:
            actual = files.sha256(part_path)
        except OSError as error:
            raise CheckpointError(f"cannot read {part_path}: {error.strerror or error}") from None
        if actual != expected[part]:
            raise CheckpointError(f"{part_path} is damaged: its SHA-256 does not match {MANIFEST}")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json(path):
    """The JSON value in the file `path`; a file that is missing or not JSON is a one-line CheckpointError."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path}: {_first_line(error)}") from None


def invalid_field(path, field, allowed, value):
    """Raises the one-line CheckpointError for a field of the JSON file `path` that fails its check."""
    raise CheckpointError(f"{path}: `{field}` must be {allowed}, got {value!r:.80}")


def read_state(path):
    """The validated `state.json` of the checkpoint at `path`; raises CheckpointError naming the field."""
    state_path = os.path.join(path, STATE)
    state = read_json(state_path)

    def bad(field, allowed, value):
        invalid_field(state_path, field, allowed, value)

    if not isinstance(state, dict):
        bad("(top level)", "a JSON object", state)
    epoch = state.get("epoch")
    if not checks.is_integer(epoch) or epoch < 1:
        bad("epoch", "an integer >= 1", epoch)
    named = _epoch_of(os.path.basename(os.path.normpath(path)))
    if named is not None and named != epoch:
        bad("epoch", f"{named} (the checkpoint directory's epoch)", epoch)
    history = state.get("history", {})
    if not isinstance(history, dict):
        bad("history", "an object of per-epoch lists", history)
    for key, values in history.items():
        if not isinstance(values, list) or len(values) > epoch or not all(checks.is_number(v) for v in values):
            bad(f"history.{key}", f"a list of at most {epoch} numbers", values)
    seconds = state.get("seconds", 0.0)
    if not checks.is_number(seconds) or not math.isfinite(seconds) or seconds < 0:
        bad("seconds", "a finite number >= 0", seconds)
    if not isinstance(state.get("callbacks", {}), dict):
        bad("callbacks", "an object", state.get("callbacks"))
    return state


def check_finite(variables, where):
    """Raises CheckpointError naming the first variable (or array) of `variables` with a NaN or an infinity."""
    for variable in variables:
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            name = getattr(variable, "path", None) or getattr(variable, "name", "an array")
            raise CheckpointError(f"{where} holds non-finite values in {name}")


def check_finite_file(path):
    """Refuses a weights file (HDF5) holding a NaN or an infinity before anything is loaded from it."""
    import h5py

    arrays = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda _, item: arrays.append(item) if isinstance(item, h5py.Dataset) else None)
            check_finite(arrays, path)
    except CheckpointError:
        raise
    except Exception as error:  # h5py raises many types for a damaged file
        raise CheckpointError(f"cannot read {path}: {_first_line(error)}") from None


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {key: saved[key] for key in saved.files}
    except Exception as error:  # zipfile/numpy raise many types for a damaged archive
        raise CheckpointError(f"cannot read {path}: not a valid .npz archive of arrays "
                              f"({type(error).__name__})") from None


def load_weights(model, path):
    """`model.load_weights(path)`, any failure (a corrupt or mismatched file) a one-line CheckpointError."""
    try:
        model.load_weights(path)
    except Exception as error:  # h5py/Keras raise many types for corrupt or mismatched files
        raise CheckpointError(f"cannot load {path} into this model: {_first_line(error)}") from None


def restore(model, path, callbacks=(), steps_per_epoch=None):
    """Loads the checkpoint at `path` into the compiled `model`; returns its state dict.

    The model must have the architecture the checkpoint was written from and
    be compiled (its optimizer is built here so its slots can be filled).
    Before anything is loaded, every file is checked against the manifest's
    SHA-256 and `state.json` field by field; after loading, every weight,
    optimizer slot and callback array must be finite, and with
    `steps_per_epoch` the optimizer's step must be `epoch * steps_per_epoch`.
    Callbacks with `set_state` get their saved state back. Any failure is a
    one-line CheckpointError naming the file.
    """
    if getattr(model, "optimizer", None) is None:
        raise CheckpointError("`model` must be compiled before restore(): the optimizer state is restored too.")
    if not model.built:
        raise CheckpointError("`model` must be built before restore(); call it on a batch first.")
    verify(path)
    state = read_state(path)
    random_states = _load_npz(os.path.join(path, RANDOM))
    arrays = _load_npz(os.path.join(path, ARRAYS))
    saved_states = {
        name: _arrays_in(saved, arrays, path) for name, saved in state.get("callbacks", {}).items()
    }
    check_finite(arrays.values(), os.path.join(path, ARRAYS))
    model.optimizer.build(model.trainable_variables)
    weights = os.path.join(path, WEIGHTS)
    load_weights(model, weights)
    generators = _seed_generators(model)
    if sorted(random_states) != sorted(f"s{i}" for i in range(len(generators))):
        raise CheckpointError(
            f"{path} holds {len(random_states)} random-generator states, the model has {len(generators)}."
        )
    check_finite(list(model.weights) + list(model.optimizer.variables), weights)
    iterations = int(model.optimizer.iterations.numpy())
    if steps_per_epoch is not None and iterations != state["epoch"] * steps_per_epoch:
        raise CheckpointError(
            f"{weights} is at optimizer step {iterations}, but {STATE} says epoch {state['epoch']} "
            f"({state['epoch'] * steps_per_epoch} steps of {steps_per_epoch})"
        )
    for index, (_, generator) in enumerate(generators):
        generator.state.assign(random_states[f"s{index}"])
    for callback in callbacks:
        saved_state = saved_states.get(type(callback).__name__)
        if saved_state is not None and hasattr(callback, "set_state"):
            callback.set_state(saved_state)
    return state


def restore_latest(model, directory, callbacks=(), steps_per_epoch=None):
    """Restores the newest checkpoint of `directory` that passes every check of `restore`.

    Returns (path, state), or (None, None) when `directory` holds no
    checkpoint at all. A damaged or inconsistent checkpoint is skipped with a
    warning naming it and why; when checkpoints exist but none is usable, a
    CheckpointError says so (the run must not silently start from scratch).
    """
    problems = []
    try:
        pointed = _read_pointer(directory)
    except CheckpointError as error:
        problems.append(str(error))
        pointed = None
    order = candidates(directory)
    if pointed is not None and pointed not in order:
        problems.append(f"{pointed} is incomplete")
    for path in order:
        try:
            state = restore(model, path, callbacks, steps_per_epoch)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        for problem in problems:
            logging.warning("Skipped a checkpoint: %s; resuming from %s instead.", problem, path)
        return path, state
    if problems:
        raise CheckpointError(f"no usable checkpoint in {directory}: {problems[0]}"
                              f"{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; "
                              "start afresh with --restart")
    return None, None


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoints the model, optimizer, RNG and callback states every epoch.

    Args:
        directory: where `epoch-NNNNN/` checkpoints and `latest` go.
        state: the restored state when resuming (its history and seconds are
            continued), or None for a new run.
        callbacks: callbacks whose `get_state()` goes into each checkpoint.
        keep: how many checkpoints to keep (the newest).

    `history` holds every epoch's logs, including those before a resume.
    Put it after callbacks that add to the logs, so their values are saved.
    """

    def __init__(self, directory, state=None, callbacks=(), keep=2):
        super().__init__()
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be an integer >= 1, got {keep!r}.")
        self.directory = os.fspath(directory)
        self.keep = keep
        self.state_callbacks = list(callbacks)
        state = state or {}
        self.history = {key: list(values) for key, values in state.get("history", {}).items()}
        self.seconds = float(state.get("seconds", 0.0))
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.seconds += time.time() - (self._epoch_start or time.time())
        state = {"epoch": epoch + 1, "history": self.history, "seconds": self.seconds}
        save(self.model, self.directory, state, self.state_callbacks, self.keep)
