"""Pieces every experiment of the training binary shares.

The model, its optimizer and loss, and a `fit` that checkpoints every epoch
and resumes from the last checkpoint, so every method of the binary trains
with the same recipe and the same data (fair comparisons, paper 001 §4).
"""

import contextlib
import os

import keras
from absl import logging

from tfsubspace import checkpointing, distribution, files
from tfsubspace.callbacks import StopOnNonFiniteLoss, SubspaceGeometry
from tfsubspace.model import SubspaceModel


def build_shape(subspace_config):
    """The `ts.Shape` named by config.subspace."""
    import tfsubspace as ts

    name = subspace_config.shape
    if name == "line":
        return ts.Line()
    if name == "bezier":
        return ts.Bezier(num_bends=subspace_config.num_bends)
    if name == "polychain":
        return ts.PolyChain(num_bends=subspace_config.num_bends)
    return ts.Simplex(num_vertices=subspace_config.num_vertices)


def warmup_epochs(config, epochs=None):
    """config.train.warmup_epochs, clamped to epochs - 1 so at least one epoch decays (logged)."""
    train = config.train
    epochs = train.epochs if epochs is None else epochs
    clamped = max(0, min(train.warmup_epochs, epochs - 1))
    if clamped != train.warmup_epochs:
        logging.warning("train.warmup_epochs=%d clamped to %d: a schedule of %d epochs must keep one epoch of "
                        "cosine decay.", train.warmup_epochs, clamped, epochs)
    return clamped


def learning_rate_schedule(config, steps_per_epoch, epochs=None):
    """Linear warm-up, then cosine decay to 0 over `epochs` (default config.train.epochs; 001 §4)."""
    train = config.train
    epochs = train.epochs if epochs is None else epochs
    total_steps = epochs * steps_per_epoch
    warmup_steps = warmup_epochs(config, epochs) * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else train.learning_rate,
        decay_steps=total_steps - warmup_steps,
        warmup_target=train.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def build_optimizer(config, steps_per_epoch, schedule=None):
    """SGD with momentum and the configured weight decay (`ts.optimizers.SGD`: "l2" is the papers').

    `schedule` defaults to `learning_rate_schedule`.
    """
    from tfsubspace.optimizers import SGD

    train = config.train
    return SGD(
        learning_rate=schedule if schedule is not None else learning_rate_schedule(config, steps_per_epoch),
        momentum=train.momentum,
        weight_decay=train.weight_decay or None,
        weight_decay_mode=train.weight_decay_mode,
    )


def build_model(config, datasets, seed=None):
    """The configured zoo model, initialised from `seed` (default config.seed).

    Under a `tf.distribute` strategy (config.distribution other than "none")
    its batch norm is synchronized: statistics of the global batch, as on one
    device. Also on one replica, so that a run's numbers do not depend on the
    number of devices beyond rounding (Keras' synchronized moments are
    one-pass, the local ones two-pass; BUILD_NOTES.md).
    """
    import inspect

    import tensorflow as tf

    from tfsubspace.models import MODELS, get_model

    keras.utils.set_random_seed(config.seed if seed is None else seed)
    kwargs = dict(config.model.kwargs)
    if config.model.dropout:
        kwargs["dropout"] = config.model.dropout
    if tf.distribute.has_strategy() and "synchronized" in inspect.signature(MODELS[config.model.name]).parameters:
        kwargs["synchronized"] = True
    return get_model(config.model.name, input_shape=datasets.input_shape, num_classes=datasets.num_classes, **kwargs)


def build_loss(config):
    """Cross-entropy on logits, label-smoothed when config.train.label_smoothing > 0."""
    if config.train.label_smoothing:
        from tfsubspace.baselines import SparseCategoricalCrossentropyWithLabelSmoothing

        return SparseCategoricalCrossentropyWithLabelSmoothing(label_smoothing=config.train.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model, config, steps_per_epoch, schedule=None):
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch, schedule),
        loss=build_loss(config),
        metrics=["accuracy"],
        jit_compile=config.train.jit_compile,  # default off: 2-3x slower on CPU here (BUILD_NOTES.md)
    )
    return model


@contextlib.contextmanager
def precision(config):
    """Keras' global dtype policy set to config.train.precision inside, the previous one restored after.

    Every model built inside (zoo model, subspace, baselines, baked models)
    takes the policy; under "mixed_float16" `compile` wraps the optimizer in
    `keras.optimizers.LossScaleOptimizer`.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.train.precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def ensemble_of_points(model, points, datasets, config):
    """`ts.evaluate.ensemble` of `points` of a SubspaceModel on the test set, batch norm recomputed at each."""
    from tfsubspace import evaluate

    return evaluate.ensemble(points, datasets.test, model=model, batchnorm_data=datasets.train_eval,
                             batchnorm_steps=config.eval.batchnorm_steps, verbose=1)


def checkpoint_directory(workdir, tag):
    """`workdir/checkpoints/<tag>`, created; refused if it is not a directory inside the workdir."""
    directory = os.path.join(workdir, "checkpoints", tag)
    for path in (os.path.join(workdir, "checkpoints"), directory):
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            raise checkpointing.CheckpointError(f"{path} must be a directory of checkpoints, not a file or a symlink")
    os.makedirs(directory, exist_ok=True)
    if not files.inside(directory, workdir):
        raise checkpointing.CheckpointError(f"{directory} resolves outside the workdir {workdir}")
    return directory


def fit(model, datasets, config, workdir, tag, callbacks=(), epochs=None, order_seed=None):
    """Trains `model`, checkpointing every epoch; resumes from the last checkpoint.

    Checkpoints go to `workdir/checkpoints/<tag>/`. A run started again with
    the same arguments restores the model, optimizer, RNG and callback states
    of the last complete epoch and continues with the batches of the next one
    (the data order is keyed by epoch), so it ends where an uninterrupted run
    ends. `callbacks` with `get_state`/`set_state` (e.g. SWA) are checkpointed
    too. `epochs` defaults to config.train.epochs; `order_seed` (default
    config.seed) keys the data order and augmentation.

    Returns (history of all epochs, seconds spent training).
    """
    epochs = config.train.epochs if epochs is None else epochs
    directory = checkpoint_directory(workdir, tag)
    # Callbacks that add to the logs come first, so checkpoints and TensorBoard record what they add.
    logged = ([SubspaceGeometry()] if isinstance(model, SubspaceModel) else []) + list(callbacks)
    latest, state = checkpointing.restore_latest(model, directory, logged, steps_per_epoch=datasets.steps_per_epoch)
    if latest is not None:
        logging.info("Resuming %s from %s (epoch %d of %d).", tag, latest, state["epoch"], epochs)
        if state["epoch"] > epochs:
            raise checkpointing.CheckpointError(
                f"{latest} has trained {state['epoch']} epochs, more than the {epochs} asked for")
    initial_epoch = state["epoch"] if state else 0
    checkpoint = checkpointing.EpochCheckpoint(directory, state=state, callbacks=logged)
    all_callbacks = logged + [
        StopOnNonFiniteLoss(),
        keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard", tag)),
        checkpoint,
    ]
    if initial_epoch < epochs:
        validation = datasets.validation
        model.fit(
            # Under multi_worker each worker keeps its part of every global batch.
            distribution.shard_by_data(datasets.train_epochs(initial_epoch, order_seed=order_seed)),
            steps_per_epoch=datasets.steps_per_epoch,
            initial_epoch=initial_epoch,
            epochs=epochs,
            validation_data=None if validation is None else distribution.shard_by_data(validation),
            callbacks=all_callbacks,
            verbose=2,
        )
    return checkpoint.history, checkpoint.seconds


def test_scores(model, datasets, config, temperature=1.0):
    """Test scores of a plain Keras model with batch norm recomputed (as for subspace points)."""
    from tfsubspace.evaluation.batchnorm import recompute_batchnorm

    recompute_batchnorm(model, datasets.train_eval, steps=config.eval.batchnorm_steps)
    return scores_of(model, datasets, temperature)


def scores_of(model, datasets, temperature=1.0):
    """(test scores, test probabilities) of a model as it is (batch norm already set)."""
    from tfsubspace import evaluation

    probabilities, labels = evaluation.predict(model, datasets.test, temperature=temperature)
    return evaluation.scores(probabilities, labels), probabilities


def table_row(name, scores):
    """A report line ({"name", "accuracy", "nll", "ece"}) from `evaluation.scores` output."""
    return {"name": name, "accuracy": scores["accuracy"], "nll": scores["nll"], "ece": scores["ece"]}
