"""SPRO's checkpoints: one verified directory per simplex size, so a restarted run regrows only what is missing.

`ts.spro.grow` trains vertex after vertex with a fresh optimizer each and has
no `initial_epoch`, so `grow_simplex` checkpoints finished simplexes instead
of epochs. After each new vertex, `save` writes `vertices-NNNNN/` (NNNNN: the
vertex count) holding

- `model.weights.h5`: the simplex (every vertex, batch-norm statistics);
- `state.json`: {"num_vertices": N, "history": the model's `spro_history`};
- `manifest.json`, written last: the SHA-256 of the two files above,

through the same machinery as the epoch checkpoints (`checkpointing.commit`:
a fresh temporary directory renamed into place, nothing planted there
followed; `checkpointing.write_manifest`). `restore_newest` loads the largest
simplex that passes every check of an epoch checkpoint (`checkpointing.verify`,
the state fields, `checkpointing.check_finite`); each one skipped is a warning
naming it and why, and the vertices after the good one are grown again (from
the base model itself if none is good).

Example:

>>> import os, tempfile
>>> directory = tempfile.mkdtemp()
>>> restore_newest(lambda num_vertices: None, directory)  # nothing saved yet: grow from the base model
(None, 1)
"""

import json
import os
import re

from absl import logging

from tfsubspace import checkpointing, checks, files

PARTS = (checkpointing.WEIGHTS, checkpointing.STATE)
_NAME = re.compile(r"vertices-(\d{5,})")
# What tfsubspace <= 0.x wrote (no manifest): skipped, never loaded unverified.
_UNVERIFIED = re.compile(r"state\.json|vertices_\d+\.weights\.h5")


def _count_of(name):
    match = _NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def save(model, directory, keep=2):
    """Checkpoints the grown `model` (a `SimplexModel` with `spro_history`); keeps the `keep` largest."""
    num_vertices = model.subspace_shape.num_points

    def write(temporary):
        model.save_weights(os.path.join(temporary, checkpointing.WEIGHTS))
        with open(os.path.join(temporary, checkpointing.STATE), "w") as f:
            json.dump({"num_vertices": num_vertices, "history": model.spro_history}, f, default=float)
            f.flush()
            os.fsync(f.fileno())
        checkpointing.write_manifest(temporary, PARTS)

    final = checkpointing.commit(directory, f"vertices-{num_vertices:05d}", write)
    for entry in sorted((e for e in os.listdir(directory) if _count_of(e) is not None), key=_count_of)[:-keep]:
        files.remove(os.path.join(directory, entry))
    return final


def _read_state(path, num_vertices):
    """The validated `state.json` of the checkpoint `path` of `num_vertices` vertices."""
    state_path = os.path.join(path, checkpointing.STATE)
    state = checkpointing.read_json(state_path)
    if not isinstance(state, dict):
        checkpointing.invalid_field(state_path, "(top level)", "a JSON object", state)
    if not checks.is_integer(state.get("num_vertices")) or state["num_vertices"] != num_vertices:
        checkpointing.invalid_field(state_path, "num_vertices",
                                    f"{num_vertices} (the checkpoint directory's vertex count)",
                                    state.get("num_vertices"))
    history = state.get("history")
    expected = list(range(1, num_vertices))
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history) or \
            [e.get("vertex") for e in history] != expected:
        checkpointing.invalid_field(state_path, "history", f"one object per grown vertex {expected}", history)
    return state


def restore(build, path, num_vertices):
    """The simplex saved at `path`: `build(num_vertices)` gives the untrained structure the weights load into."""
    checkpointing.verify(path, PARTS)
    state = _read_state(path, num_vertices)
    weights = os.path.join(path, checkpointing.WEIGHTS)
    checkpointing.check_finite_file(weights)
    model = build(num_vertices)
    checkpointing.load_weights(model, weights)
    checkpointing.check_finite(model.weights, weights)
    model.spro_history = state["history"]
    return model


def restore_newest(build, directory):
    """(model, its vertex count) of the largest good checkpoint in `directory`, or (None, 1) if there is none."""
    problems = [f"{os.path.join(directory, name)} has no manifest (written by an older tfsubspace)"
                for name in sorted(os.listdir(directory)) if _UNVERIFIED.fullmatch(name)]
    found = []
    for name in os.listdir(directory):
        path, count = os.path.join(directory, name), _count_of(name)
        if count is None:
            continue
        if os.path.islink(path) or not os.path.isdir(path) or count < 2:
            problems.append(f"{path} is not a checkpoint directory")
        else:
            found.append((count, path))
    for count, path in sorted(found, reverse=True):
        try:
            model = restore(build, path, count)
        except checkpointing.CheckpointError as error:
            problems.append(str(error))
            continue
        _warn(problems, count)
        return model, count
    _warn(problems, 1)
    return None, 1


def _warn(problems, count):
    start = f"{count} vertices" if count > 1 else "the base model"
    for problem in problems:
        logging.warning("Skipped a SPRO checkpoint: %s; resuming from %s instead.", problem, start)
