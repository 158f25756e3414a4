"""A workdir belongs to one config: its record, its lock, starting afresh or extending.

`open_workdir(path, config)` is what the training binary does first:

1. checks `path` is (or can become) a writable directory;
2. takes `path/.lock` (an exclusive `flock`, released by the kernel if the
   process dies, so a SIGKILLed run never leaves a stale lock); a second run
   on the same workdir stops with one line naming the holder's pid;
3. compares the config with `path/workdir.json`, the record of the config and
   library version that created the workdir. A difference in a key the
   method reads (`SHARED_SECTIONS`, `METHOD_SECTIONS`) that changes training
   (`IGNORED` lists the evaluation-only keys) is refused in
   one line naming the first differing key, unless the caller asks to
   `restart` (delete what earlier runs wrote, start afresh) or to `extend`
   (only `train.epochs` grew: the cosine schedule is rebuilt for the new
   total from the step reached; the extension is recorded);
4. refuses a symlink among the outputs (`OUTPUTS`, at any depth) that leads
   out of the workdir, naming it, so TensorBoard or an export never writes
   outside.

Example:

>>> import os, tempfile
>>> from tfsubspace import config as config_lib, workdir
>>> path = tempfile.mkdtemp()
>>> config = config_lib.base_config()
>>> with workdir.open_workdir(path, config) as record:
...     record["events"][0]["event"]
'created'
>>> os.makedirs(os.path.join(path, "checkpoints", "subspace", "epoch-00001"))  # as if a run had trained
>>> config.train.learning_rate = 0.01
>>> with workdir.open_workdir(path, config):
...     pass
Traceback (most recent call last):
...
tfsubspace.workdir.WorkdirError: ... was created with config.train.learning_rate=0.1, this run has 0.01; ...
"""

import contextlib
import datetime
import fcntl
import json
import os

from absl import logging

from tfsubspace import files

RECORD = "workdir.json"
LOCK = ".lock"

#: Keys that do not change what training produces: evaluation settings (the
#: finished run is evaluated again with the new values) and the optional extra
#: standard model of a subspace run (its own phase, trained when asked).
IGNORED = (
    "eval.batch_size",
    "eval.alphas",
    "eval.batchnorm_steps",
    "eval.export",
    "train.standard_baseline",
    "connect.points",
    "connect.train_examples",
    "connect.ensemble_points",
    "connect.plane_grid",
    "connect.plane_examples",
    "connect.plane_batchnorm_steps",
    "spro.ensemble_samples",
    # Where ImageNet's tar files lie matters only to the tfds preparation before the first run.
    "dataset.manual_dir",
    # Dataset shift is evaluated after training: a finished run can be evaluated again under shift.
    "eval.shift.enabled",
    "eval.shift.source",
    "eval.shift.corruptions",
    "eval.shift.severities",
    "eval.shift.examples",
    "eval.shift.cache_dir",
    "eval.shift.seed",
    "eval.shift.best_severity",
)

#: The config sections every method reads, and those only one method reads
#: (benchmarks/reproduce.py keys its runs with them too): a change elsewhere (a new SWA
#: option for a standard run) cannot change what this run trains.
SHARED_SECTIONS = ("seed", "method", "dataset", "model", "train", "eval")
METHOD_SECTIONS = {
    "standard": (),
    "subspace": ("subspace",),
    "standard_ensemble": ("baseline.ensemble_size",),
    "swa": ("baseline.swa_", "baseline.swag_"),
    "snapshot": ("baseline.num_snapshots",),
    "fge": ("baseline.fge_",),
    "connect": ("connect",),
    "spro": ("spro",),
}

#: Methods whose schedule is set by train.epochs alone, so `extend` is honest.
EXTENDABLE = ("standard", "subspace", "standard_ensemble")

#: What earlier runs of the binary write into a workdir (deleted by `restart`).
OUTPUTS = ("checkpoints", "tensorboard", "savedmodel", "model.keras", "results.json", "results.md", RECORD)


class WorkdirError(ValueError):
    """A workdir that cannot be used for this run (another config, locked, not writable)."""


def flatten(tree, prefix=""):
    """{"a.b": value} for every leaf of a nested dict, values as JSON would store them.

    >>> flatten({"seed": 0, "train": {"epochs": 3, "alphas": (0.0, 1.0)}})
    {'seed': 0, 'train.epochs': 3, 'train.alphas': [0.0, 1.0]}
    """
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.loads(json.dumps(value, default=str))
    return flat


def method_reads(key, method):
    """True if a run of `method` reads the flattened config key `key` (training or evaluation).

    >>> method_reads("baseline.swa_lr", "swa"), method_reads("baseline.swa_lr", "standard")
    (True, False)
    """
    prefixes = SHARED_SECTIONS + METHOD_SECTIONS.get(method, ())
    return any(key == p or key.startswith(p if p.endswith("_") else p + ".") for p in prefixes)


def _matters(key, method):
    """True if `key` can change what a run of `method` trains."""
    return key not in IGNORED and method_reads(key, method)


def first_difference(recorded, current, defaults):
    """The first key (in `current`'s order) whose value changes training, or None.

    Only keys the method reads count (`SHARED_SECTIONS`, `METHOD_SECTIONS`),
    minus `IGNORED`. A key the record lacks (added to the schema since) is
    compared with its default; a key only the record has counts as a difference.
    """
    if recorded.get("method") != current.get("method"):
        return "method"
    method = current.get("method")
    for key, value in current.items():
        if _matters(key, method) and recorded.get(key, defaults.get(key)) != value:
            return key
    for key in recorded:
        if key not in current and _matters(key, method):
            return key
    return None


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _check_directory(path):
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise WorkdirError(f"--workdir must name a directory, got {path!r}")
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise WorkdirError(f"--workdir {path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise WorkdirError(f"--workdir {files.describe(error, path)}") from None
    return path


@contextlib.contextmanager
def _lock(path):
    lock_path = os.path.join(path, LOCK)
    if os.path.islink(lock_path):
        os.unlink(lock_path)  # never follow a planted symlink
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as error:
        raise WorkdirError(f"--workdir {files.describe(error, lock_path)}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise WorkdirError(f"another run (pid {holder}) is using --workdir {path}; wait for it to end "
                               "or use another --workdir") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the flock


def _read_record(path):
    record_path = os.path.join(path, RECORD)
    if not os.path.lexists(record_path):
        return None
    try:
        with open(record_path) as f:
            record = json.load(f)
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise ValueError("it must be an object with a `config` object")
        if not isinstance(record.get("events", []), list):
            raise ValueError("`events` must be a list")
    except (OSError, ValueError) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WorkdirError(f"cannot read {record_path}: {text}; pass --restart to start afresh") from None
    return record


def _has_checkpoints(path):
    """True if any phase under `path/checkpoints` holds a checkpoint or a temporary one."""
    root = os.path.join(path, "checkpoints")
    if not os.path.isdir(root):
        return False
    return any(os.path.isdir(os.path.join(root, tag)) and os.listdir(os.path.join(root, tag))
               for tag in os.listdir(root)) or any(not os.path.isdir(os.path.join(root, t)) for t in os.listdir(root))


def _check_outputs_inside(path):
    """Refuses a symlink among the binary's outputs (at any depth) that leads out of the workdir.

    Writers that rename into place (results.json, model.keras) would replace
    such a link, but TensorBoard, the SavedModel export and h5py follow one,
    so every output path is checked alike before anything is written.
    """
    for name in OUTPUTS:
        top = os.path.join(path, name)
        links = [top] if os.path.islink(top) else []
        if os.path.isdir(top) and not links:
            for root, directories, names in os.walk(top):  # never descends into a symlinked directory
                # A link to a file deeper down (e.g. at `latest.tmp`) is replaced by a rename, never written through.
                links += [os.path.join(root, n) for n in directories + names
                          if os.path.islink(os.path.join(root, n)) and not os.path.isfile(os.path.join(root, n))]
        for link in links:
            if not files.inside(link, path):
                raise WorkdirError(f"{link} is a symlink to {os.path.realpath(link)}, outside the workdir "
                                   f"{path}; remove it (or pass --restart) so nothing is written outside")


def _write_record(path, record):
    files.write_atomically(os.path.join(path, RECORD), json.dumps(record, indent=1))


def _start_afresh(path):
    for name in OUTPUTS:
        files.remove(os.path.join(path, name))
    for name in os.listdir(path):
        if name.endswith(".png"):
            files.remove(os.path.join(path, name))


def _version():
    import tfsubspace

    return tfsubspace.__version__


def _show(value):
    return json.dumps(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else repr(value)


@contextlib.contextmanager
def open_workdir(path, config, restart=False, extend=False):
    """Checks, locks and records the workdir `path` for `config`; yields its record dict.

    `restart`: delete what earlier runs wrote here (checkpoints, logs,
    results, models) and start afresh. `extend`: accept a larger
    `train.epochs` than recorded (methods in EXTENDABLE only).
    """
    from tfsubspace import config as config_lib

    if restart and extend:
        raise WorkdirError("--restart and --extend cannot be combined: restart starts afresh, extend continues")
    path = _check_directory(path)
    with _lock(path):
        current = flatten(config.to_dict())
        record = _read_record(path)
        if restart:
            _start_afresh(path)
            record = None
        _check_outputs_inside(path)
        if record is None and not restart and _has_checkpoints(path):
            raise WorkdirError(f"--workdir {path} holds checkpoints but no {RECORD} (written by an older "
                               "tfsubspace?), so its config is unknown; pass --restart to start afresh")
        elif record is not None and not _has_checkpoints(path):
            record = None  # an earlier run stopped before training anything: nothing to protect
        if record is None:
            record = {"library_version": _version(), "config": current,
                      "events": [{"event": "created", "time": _now(), "epochs": config.train.epochs}]}
        else:
            _compare(path, record, current, config, config_lib, extend)
        _write_record(path, record)
        yield record


def _compare(path, record, current, config, config_lib, extend):
    if record.get("library_version") != _version():
        logging.warning("--workdir %s was created by tfsubspace %s; this is %s.", path,
                        record.get("library_version"), _version())
    recorded = record["config"]
    defaults = flatten(config_lib.base_config().to_dict())
    key = first_difference(recorded, current, defaults)
    if key == "train.epochs" and extend:
        old, new = recorded.get(key), current[key]
        if config.method not in EXTENDABLE:
            raise WorkdirError(f"--extend works for config.method in {EXTENDABLE}, whose schedule depends on "
                               f"train.epochs alone; got {config.method!r}")
        if not new > old:
            raise WorkdirError(f"--extend needs config.train.epochs above the recorded {old}, got {new}")
        recorded_rest = dict(recorded, **{key: new})
        if first_difference(recorded_rest, current, defaults) is None:
            record["events"].append({"event": "extended", "time": _now(), "from_epochs": old, "to_epochs": new})
            record["config"] = current
            logging.warning("Extending the run in %s from %d to %d epochs: the cosine schedule is rebuilt "
                            "for %d epochs from the step reached.", path, old, new, new)
            return
        key = first_difference(recorded_rest, current, defaults)
    if key is None:
        if extend:
            raise WorkdirError(f"--extend needs config.train.epochs above the recorded "
                               f"{recorded.get('train.epochs')}, got {current['train.epochs']}")
        record["config"] = current  # only evaluation keys may differ: keep the latest
        return
    old = recorded.get(key, defaults.get(key, "(absent)"))
    new = current.get(key, "(absent)")
    hint = "--extend to train on, " if key == "train.epochs" and new > old else ""
    raise WorkdirError(
        f"--workdir {path} was created with config.{key}={_show(old)}, this run has {_show(new)}; "
        f"pass {hint}--restart to start afresh there (deleting its checkpoints), or use another --workdir"
    )
