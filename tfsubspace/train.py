r"""The training binary: one command per experiment of the papers.

    python -m tfsubspace.train --config=configs/fashion_mnist_line.py --workdir=runs/line

Trains the configured model (a subspace, and/or a standard model), then
evaluates the subspace at each α with batch norm recomputed there, the
endpoint ensemble, and the midpoint, and writes into --workdir:

- results.json: the config, per-epoch history, and test metrics;
- results.md: the test metrics as a Markdown table (also printed);
- accuracy.png, geometry.png (subspace runs): accuracy and pair-ensemble
  accuracy along α with the standard references, and endpoint L2 / cos² over
  the epochs (see tfsubspace/reporting.py);
- shift.png (with config.eval.shift.enabled): test accuracy against corruption
  severity, the dataset-shift tables in results.json/results.md;
- tensorboard/<method>/: TensorBoard logs of training;
- savedmodel/1/: the midpoint (subspace) or the model (standard) as a
  SavedModel for TF Serving; model.keras: the trained Keras model.

Config fields can be overridden on the command line, e.g.
`--config.train.epochs=2 --config.dataset.train_subset=2048`, including the
model's keyword arguments (`--config.model.kwargs.width=8`).

A workdir belongs to the config that created it (`workdir.json`): running
again with the same config resumes or re-evaluates; another config is refused
in one line unless `--restart` (start afresh there) or `--extend` (a finished
run trained on to a larger `train.epochs`) is given. Every error the binary
expects (a bad config, missing data, a damaged checkpoint, a full disk, a
diverged run) is one line `tfsubspace.train: error: ...` and exit code 1.
"""

import ast
import errno
import gc
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from tfsubspace import config as config_lib
from tfsubspace import experiments, files, reporting
from tfsubspace import workdir as workdir_lib
from tfsubspace.callbacks import NonFiniteLossError
from tfsubspace.experiments import common
from tfsubspace.model import SubspaceModel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/<name>.py file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for logs, results and models.")
_RESTART = flags.DEFINE_bool("restart", False, "Start afresh in --workdir, deleting what earlier runs wrote there.")
_EXTEND = flags.DEFINE_bool("extend", False, "Train a run of --workdir on to a larger config.train.epochs.")

PREFIX = "tfsubspace.train: error: "
_KWARGS = "--config.model.kwargs."


def run(config, workdir, title="tfsubspace", restart=False, extend=False):
    """Runs the experiment described by `config`; returns the results dict.

    `title` (e.g. the config file's name) heads the report and its plots.
    `restart` / `extend`: see `tfsubspace.workdir.open_workdir`.
    """
    config_lib.validate(config)
    from tfsubspace import data, distribution

    # First: MultiWorkerMirroredStrategy and logical CPUs must precede every other TensorFlow op.
    strategy = distribution.make_strategy(config)
    chief = distribution.is_chief(strategy)
    # Models, optimizers, metrics and checkpoint restores are all created inside the scope; a
    # non-chief worker writes into a temporary copy of the workdir (removed at the end).
    with strategy.scope(), distribution.worker_workdir(strategy, workdir) as workdir, common.precision(config), \
            workdir_lib.open_workdir(workdir, config, restart=restart, extend=extend) as record:
        datasets = data.build_datasets(
            config.dataset.name,
            batch_size=config.train.batch_size,
            seed=config.seed,
            augment=config.dataset.augment,
            validation_size=config.dataset.validation_size,
            train_subset=config.dataset.train_subset,
            data_dir=config.dataset.data_dir,
            eval_batch_size=config.eval.batch_size,
            pad_to=config.dataset.pad_to,
            label_noise=config.dataset.label_noise,
            label_noise_seed=config.dataset.label_noise_seed,
            image_size=config.dataset.image_size,
            manual_dir=config.dataset.manual_dir,
        )
        logging.info("Data: %s", data.describe(datasets.source))
        results = {"config": config.to_dict(), "data": datasets.source,
                   "workdir": {key: record[key] for key in ("library_version", "events")}}
        final_model, method_results = experiments.runner(config.method)(config, datasets, workdir)
        references = method_results.pop("shift_references", {})  # models, not results: never reported
        results.update(method_results)
        if config.eval.shift.enabled:  # dataset shift of the trained model (tfsubspace/experiments/shift.py)
            from tfsubspace.experiments import shift

            results["shift"] = shift.run(config, datasets, final_model, references)

        with files.replacing(os.path.join(workdir, "model.keras"), suffix=".keras") as path:
            final_model.save(path)
        if config.eval.export:
            path = os.path.join(workdir, "savedmodel", "1")
            with files.naming(path):
                _export(final_model, path)
            results["savedmodel"] = path
        paths = reporting.report(results, workdir, title=title)
    if chief:
        print(reporting.markdown_table(results), flush=True)
        print("Wrote " + ", ".join(sorted(paths.values())), flush=True)
    return results


def _export(final_model, path):
    import tensorflow as tf

    try:
        if isinstance(final_model, SubspaceModel):
            final_model.export(path)  # its inference point, as stock layers
        else:
            final_model.export(path, format="tf_saved_model", verbose=False)
    except (tf.errors.OpError, OSError) as error:
        files.remove(path)  # no half-written SavedModel left behind
        if isinstance(error, OSError):
            raise
        # TensorFlow's writer says "<file>; No space left on device".
        message = (error.message or "").splitlines()[0].split("; ")[-1]
        code = errno.ENOSPC if "No space left" in message else errno.EROFS if "Read-only" in message else None
        raise OSError(code, message, path) from None


def _literal(text):
    """A command-line value as Python literal (8, 0.5, 'relu', (1, 2)), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_model_kwargs(argv):
    """Takes `--config.model.kwargs.NAME=VALUE` out of argv (the locked config has no such keys yet)."""
    kwargs, rest = {}, []
    for arg in argv:
        if arg.startswith(_KWARGS):
            name, separator, value = arg[len(_KWARGS):].partition("=")
            if not separator or not name.isidentifier():
                sys.exit(f"{PREFIX}{arg!r} must look like {_KWARGS}NAME=VALUE")
            kwargs[name] = _literal(value)
        else:
            rest.append(arg)
    return kwargs, rest


def parse_flags(argv):
    """absl's flag parsing, with every failure (a misspelt key, a bad config file) as one line."""
    model_kwargs, argv = _split_model_kwargs(argv)
    sys.argv[:] = _split_model_kwargs(sys.argv)[1]  # config_flags reads its overrides from sys.argv too
    try:
        rest = flags.FLAGS(argv)
        config = _CONFIG.value  # loading the file and applying overrides happens here or above
        if config is not None:
            config.to_dict()  # a config that failed to load is a proxy that raises only when used
    except flags.Error as error:
        sys.exit(f"{PREFIX}{_one_line(error)}")
    except Exception as error:  # config_flags raises many types for a missing or broken config file
        sys.exit(f"{PREFIX}{_config_problem(error)}")
    if config is not None and model_kwargs:
        with config.model.kwargs.unlocked():
            config.model.kwargs.update(model_kwargs)
    return rest


def _one_line(error):
    text = " ".join(str(error).replace("\\n", " ").split())
    return text or type(error).__name__


def _config_problem(error):
    """One line for an error raised while loading --config or applying an override."""
    text = _one_line(error)
    if isinstance(error, (AttributeError, KeyError)):
        # ml_collections' message is the repr of a KeyError: quotes, escaped quotes, "\n".
        match = re.match(r"^\W*(\w+)\W*(.*)$", text.replace("\\'", "'").replace("\\n", " "))
        key, rest = (match.group(1), match.group(2).rstrip("'\"")) if match else (text, "")
        return f"unknown config key {key!r} in an override{'; ' + rest if rest else ''}"
    if "No such file or directory" in text or "Failed loading config file" in text:
        return f"--config file cannot be loaded: {text}"
    return f"--config: {type(error).__name__}: {text}"


def main(argv):
    if len(argv) > 1:
        sys.exit(f"{PREFIX}unexpected arguments: {argv[1:]}")
    config = _CONFIG.value  # loaded and checked by parse_flags
    if config is None or _WORKDIR.value is None:
        sys.exit(f"{PREFIX}both --config=configs/<name>.py and --workdir=DIR are required")
    logging.info("Config:\n%s", config)
    import tensorflow as tf

    try:
        title = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
        run(config, _WORKDIR.value, title=title, restart=_RESTART.value, extend=_EXTEND.value)
    except (ValueError, FileNotFoundError, NonFiniteLossError) as error:
        # A wrong config, missing data, a bad checkpoint or a diverged run: one line, not a traceback.
        sys.exit(f"{PREFIX}{_one_line(error)}")
    except OSError as error:  # a full disk, a read-only file system, ...
        gc.collect()  # drop h5py handles of a failed write before the interpreter exits
        sys.exit(f"{PREFIX}{files.describe(error)}")
    except tf.errors.OpError as error:  # TensorFlow's file writers (SavedModel, TensorBoard)
        sys.exit(f"{PREFIX}{_one_line(error.message.splitlines()[0] if error.message else error)}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
