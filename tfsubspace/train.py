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
- tensorboard/<method>/: TensorBoard logs of training;
- savedmodel/1/: the midpoint (subspace) or the model (standard) as a
  SavedModel for TF Serving; model.keras: the trained Keras model.

Config fields can be overridden on the command line, e.g.
`--config.train.epochs=2 --config.dataset.train_subset=2048`.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from tfsubspace import config as config_lib
from tfsubspace import experiments, reporting
from tfsubspace.callbacks import NonFiniteLossError
from tfsubspace.model import SubspaceModel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/<name>.py file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for logs, results and models.")


def run(config, workdir, title="tfsubspace"):
    """Runs the experiment described by `config`; returns the results dict.

    `title` (e.g. the config file's name) heads the report and its plots.
    """
    config_lib.validate(config)
    from tfsubspace import data

    os.makedirs(workdir, exist_ok=True)
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
    )
    results = {"config": config.to_dict()}
    final_model, method_results = experiments.runner(config.method)(config, datasets, workdir)
    results.update(method_results)

    final_model.save(os.path.join(workdir, "model.keras"))
    if config.eval.export:
        path = os.path.join(workdir, "savedmodel", "1")
        if isinstance(final_model, SubspaceModel):
            final_model.export(path)  # its inference point, as stock layers
        else:
            final_model.export(path, format="tf_saved_model", verbose=False)
        results["savedmodel"] = path
    paths = reporting.report(results, workdir, title=title)
    print(reporting.markdown_table(results), flush=True)
    print("Wrote " + ", ".join(sorted(paths.values())), flush=True)
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _CONFIG.value is None or _WORKDIR.value is None:
        raise app.UsageError("Both --config=configs/<name>.py and --workdir=DIR are required.")
    logging.info("Config:\n%s", _CONFIG.value)
    try:
        title = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
        run(_CONFIG.value, _WORKDIR.value, title=title)
    except (ValueError, FileNotFoundError, NonFiniteLossError) as error:
        # A wrong config, missing data, a bad checkpoint or a diverged run: one line, not a traceback.
        sys.exit(f"tfsubspace.train: error: {error}")


if __name__ == "__main__":
    app.run(main)
