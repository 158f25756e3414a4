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
  arrays go to `callback_arrays.npz`.

A checkpoint is written into a temporary directory and renamed into place;
the pointer file `latest` is then replaced by an atomic rename too. A kill at
any moment therefore leaves `latest` naming a complete checkpoint (or no
`latest` at all), never a half-written one. With the data order keyed by epoch
(`Datasets.train_epochs`), a resumed run reproduces the uninterrupted one.

Loading never runs code: weights are HDF5 arrays, the rest JSON and `.npz`
read with `allow_pickle=False`.

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

import json
import os
import shutil
import time

import keras
import numpy as np

LATEST = "latest"
WEIGHTS = "model.weights.h5"
RANDOM = "random.npz"
STATE = "state.json"
ARRAYS = "callback_arrays.npz"
_PREFIX = "epoch-"
_TEMPORARY = ".tmp-"


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or does not fit the model."""


def _seed_generators(model):
    """(name, SeedGenerator) of every layer, in a stable order."""
    found = []
    for layer in model._flatten_layers(include_self=True):
        for attribute, value in sorted(vars(layer).items()):
            if isinstance(value, keras.random.SeedGenerator):
                found.append((f"{layer.path}/{attribute}", value))
    return found


def _fsync_directory(path):
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _write_atomically(path, text):
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def latest_checkpoint(directory):
    """The path of the newest complete checkpoint in `directory`, or None."""
    pointer = os.path.join(directory, LATEST)
    if not os.path.exists(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    path = os.path.join(directory, name)
    if not name.startswith(_PREFIX) or not all(
        os.path.exists(os.path.join(path, part)) for part in (WEIGHTS, RANDOM, STATE, ARRAYS)
    ):
        raise CheckpointError(
            f"{pointer} names {name!r}, which is not a complete checkpoint; "
            "delete the checkpoint directory to start the run afresh."
        )
    return path


def save(model, directory, state, callbacks=(), keep=2):
    """Writes a checkpoint of `model` (+ `state` dict) and points `latest` at it."""
    os.makedirs(directory, exist_ok=True)
    name = f"{_PREFIX}{int(state['epoch']):05d}"
    temporary = os.path.join(directory, _TEMPORARY + name)
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
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
    _fsync_directory(temporary)
    final = os.path.join(directory, name)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    _fsync_directory(directory)
    _write_atomically(os.path.join(directory, LATEST), name)
    _fsync_directory(directory)
    old = sorted(entry for entry in os.listdir(directory) if entry.startswith(_PREFIX))[:-keep]
    for entry in old:
        shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
    return final


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


def _arrays_in(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _arrays_in(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays_in(v, arrays) for v in value]
    return value


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"checkpoint state holds a {type(value).__name__}, which JSON cannot store")


def restore(model, path, callbacks=()):
    """Loads the checkpoint at `path` into the compiled `model`; returns its state dict.

    The model must have the architecture the checkpoint was written from and
    be compiled (its optimizer is built here so its slots can be filled).
    Callbacks with `set_state` get their saved state back.
    """
    if getattr(model, "optimizer", None) is None:
        raise CheckpointError("`model` must be compiled before restore(): the optimizer state is restored too.")
    try:
        with open(os.path.join(path, STATE)) as f:
            state = json.load(f)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {os.path.join(path, STATE)}: {error}") from None
    if not model.built:
        raise CheckpointError("`model` must be built before restore(); call it on a batch first.")
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(os.path.join(path, WEIGHTS))
    except Exception as error:  # h5py/Keras raise many types for corrupt or mismatched files
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot load {os.path.join(path, WEIGHTS)} into this model: {message}") from None
    with np.load(os.path.join(path, RANDOM), allow_pickle=False) as saved:
        generators = _seed_generators(model)
        if len(saved.files) != len(generators):
            raise CheckpointError(
                f"{path} holds {len(saved.files)} random-generator states, the model has {len(generators)}."
            )
        for index, (_, generator) in enumerate(generators):
            generator.state.assign(saved[f"s{index}"])
    with np.load(os.path.join(path, ARRAYS), allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    for callback in callbacks:
        saved_state = state.get("callbacks", {}).get(type(callback).__name__)
        if saved_state is not None and hasattr(callback, "set_state"):
            callback.set_state(_arrays_in(saved_state, arrays))
    return state


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
