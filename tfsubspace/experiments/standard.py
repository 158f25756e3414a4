"""Standard training: one model, the reference every method is compared with."""

from tfsubspace.experiments import common, early_stopping


def train_standard(config, datasets, workdir, seed=None, tag="standard"):
    """Trains (or resumes) one standard model from `seed`; returns (model, result, test probabilities).

    Ensembles, curves and simplexes train their members with this, so every
    member gets exactly the standard recipe; each `tag` checkpoints apart.
    `seed` sets both the initialisation and the data order (as independently
    trained members of a deep ensemble have), on the same examples and labels.
    """
    model = common.build_model(config, datasets, seed=seed)
    common.compile_model(model, config, datasets.steps_per_epoch)
    # config.eval.test_every_epoch: the "optimal early stopping" oracle (experiments/early_stopping.py).
    callbacks = [early_stopping.TestEveryEpoch(datasets.test)] if config.eval.test_every_epoch else []
    history, seconds = common.fit(model, datasets, config, workdir, tag, callbacks=callbacks, order_seed=seed)
    # Recompute BN exactly as for subspace points, so the comparison is fair.
    scores, probabilities = common.test_scores(model, datasets, config)
    result = {"history": history, "train_seconds": seconds, **{f"test_{k}": v for k, v in scores.items()}}
    if config.eval.test_every_epoch:
        result.update(early_stopping.summary(history))
        result["table_rows"] = [early_stopping.table_row(result)]
    return model, result, probabilities


def run(config, datasets, workdir):
    """method="standard": returns (model to save and export, {"standard": result})."""
    model, result, _ = train_standard(config, datasets, workdir)
    return model, {"standard": result}
