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

import numpy as np

from absl import app, flags, logging
from ml_collections import config_flags

from tfsubspace import config as config_lib
from tfsubspace import reporting
from tfsubspace.callbacks import NonFiniteLossError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/<name>.py file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for logs, results and models.")


def build_shape(subspace_config):
    import tfsubspace as ts

    name = subspace_config.shape
    if name == "line":
        return ts.Line()
    if name == "bezier":
        return ts.Bezier(num_bends=subspace_config.num_bends)
    if name == "polychain":
        return ts.PolyChain(num_bends=subspace_config.num_bends)
    return ts.Simplex(num_vertices=subspace_config.num_vertices)


def build_optimizer(config, steps_per_epoch):
    """SGD with momentum, linear warm-up then cosine decay, weight decay (001 §4)."""
    import keras

    train = config.train
    total_steps = train.epochs * steps_per_epoch
    warmup_steps = train.warmup_epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else train.learning_rate,
        decay_steps=total_steps - warmup_steps,
        warmup_target=train.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=train.momentum,
        weight_decay=train.weight_decay or None,
    )


def build_model(config, datasets):
    """The configured zoo model, seeded by config.seed."""
    import keras

    from tfsubspace.models import get_model

    keras.utils.set_random_seed(config.seed)
    kwargs = dict(config.model.kwargs)
    if config.model.dropout:
        kwargs["dropout"] = config.model.dropout
    return get_model(config.model.name, input_shape=datasets.input_shape, num_classes=datasets.num_classes, **kwargs)


def compile_model(model, config, steps_per_epoch):
    import keras

    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # 2-3x slower on CPU here (BUILD_NOTES.md)
    )
    return model


def fit(model, datasets, config, workdir, tag):
    """Trains `model`, checkpointing every epoch; resumes from the last checkpoint.

    Checkpoints go to `workdir/checkpoints/<tag>/`. A run started again with
    the same arguments restores the model, optimizer, RNG and callback states
    of the last complete epoch and continues with the batches of the next one
    (the data order is keyed by epoch), so it ends where an uninterrupted run
    ends. Returns (history of all epochs, seconds spent training).
    """
    import keras

    from tfsubspace import checkpointing
    from tfsubspace.callbacks import StopOnNonFiniteLoss, SubspaceGeometry
    from tfsubspace.model import SubspaceModel

    directory = os.path.join(workdir, "checkpoints", tag)
    latest = checkpointing.latest_checkpoint(directory)
    # Callbacks that add to the logs come first, so checkpoints and TensorBoard record what they add.
    callbacks = [SubspaceGeometry()] if isinstance(model, SubspaceModel) else []
    state = None
    if latest is not None:
        state = checkpointing.restore(model, latest, callbacks)
        logging.info("Resuming %s from %s (epoch %d of %d).", tag, latest, state["epoch"], config.train.epochs)
    initial_epoch = state["epoch"] if state else 0
    checkpoint = checkpointing.EpochCheckpoint(directory, state=state, callbacks=callbacks)
    callbacks += [
        StopOnNonFiniteLoss(),
        keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard", tag)),
        checkpoint,
    ]
    if initial_epoch < config.train.epochs:
        model.fit(
            datasets.train_epochs(initial_epoch),
            steps_per_epoch=datasets.steps_per_epoch,
            initial_epoch=initial_epoch,
            epochs=config.train.epochs,
            validation_data=datasets.validation,
            callbacks=callbacks,
            verbose=2,
        )
    return checkpoint.history, checkpoint.seconds


def run_standard(config, datasets, workdir):
    from tfsubspace import evaluate
    from tfsubspace.batchnorm import recompute_batchnorm

    model = build_model(config, datasets)
    compile_model(model, config, datasets.steps_per_epoch)
    history, seconds = fit(model, datasets, config, workdir, "standard")
    # Recompute BN exactly as for subspace points, so the comparison is fair.
    recompute_batchnorm(model, datasets.train_eval, steps=config.eval.batchnorm_steps)
    probabilities = evaluate.predict_probabilities(model, datasets.test)
    scores = evaluate.scores(probabilities, evaluate.labels_of(datasets.test))
    result = {"history": history, "train_seconds": seconds, **{f"test_{k}": v for k, v in scores.items()}}
    return model, result


def evaluation_points(shape, config):
    """α values to report: the configured grid (with 0, ½, 1) on curves; center and vertices on simplexes."""
    if shape.alpha_rank == 0:
        return sorted({round(float(a), 10) for a in config.eval.alphas} | {0.0, 0.5, 1.0})
    return [shape.center] + np.eye(shape.num_points).tolist()


def endpoint_alphas(shape):
    if shape.alpha_rank == 0:
        return [0.0, 1.0]
    return np.eye(shape.num_points).tolist()


def run_subspace(config, datasets, workdir):
    import tfsubspace as ts
    from tfsubspace import evaluate

    base = build_model(config, datasets)
    shape = build_shape(config.subspace)
    model = ts.convert(
        base,
        shape,
        beta=config.subspace.beta,
        sampling=config.subspace.sampling,
        seed=config.seed,
        init=config.subspace.init,
    )
    compile_model(model, config, datasets.steps_per_epoch)
    history, seconds = fit(model, datasets, config, workdir, "subspace")

    labels = evaluate.labels_of(datasets.test)
    sweep = evaluate.sweep(
        model,
        datasets.test,
        batchnorm_data=datasets.train_eval,
        alphas=evaluation_points(shape, config),
        batchnorm_steps=config.eval.batchnorm_steps,
    )
    endpoints = evaluate.ensemble_probabilities([sweep.probabilities(a) for a in endpoint_alphas(shape)])
    result = {
        "shape": repr(shape),
        "history": history,
        "train_seconds": seconds,
        "along_subspace": sweep.rows,
        "endpoint_ensemble": evaluate.scores(endpoints, labels),
        "midpoint": evaluate.scores(sweep.probabilities(shape.center), labels),
    }
    # Export the midpoint with its own batch-norm statistics, as evaluated.
    ts.recompute_batchnorm(model, datasets.train_eval, alpha=shape.center, steps=config.eval.batchnorm_steps)
    return model, result


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
    )
    results = {"config": config.to_dict()}
    final_model = None
    if config.method == "standard" or config.train.standard_baseline:
        final_model, results["standard"] = run_standard(config, datasets, workdir)
    if config.method == "subspace":
        final_model, results["subspace"] = run_subspace(config, datasets, workdir)

    final_model.save(os.path.join(workdir, "model.keras"))
    if config.eval.export:
        path = os.path.join(workdir, "savedmodel", "1")
        if config.method == "subspace":
            final_model.export(path)
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
