"""Subspace training (paper 001): a line, curve or simplex trained in one run, then swept."""

import numpy as np

from tfsubspace.experiments import common, standard


def evaluation_points(shape, config):
    """α values to report: the configured grid (with 0, ½, 1) on curves; center and vertices on simplexes."""
    if shape.alpha_rank == 0:
        return sorted({round(float(a), 10) for a in config.eval.alphas} | {0.0, 0.5, 1.0})
    return [shape.center] + np.eye(shape.num_points).tolist()


def endpoint_alphas(shape):
    if shape.alpha_rank == 0:
        return [0.0, 1.0]
    return np.eye(shape.num_points).tolist()


def train_subspace(config, datasets, workdir):
    """Trains (or resumes) the configured subspace; returns (model, result)."""
    import tfsubspace as ts
    from tfsubspace import evaluate

    base = common.build_model(config, datasets)
    shape = common.build_shape(config.subspace)
    model = ts.convert(
        base,
        shape,
        beta=config.subspace.beta,
        sampling=config.subspace.sampling,
        seed=config.seed,
        init=config.subspace.init,
    )
    common.compile_model(model, config, datasets.steps_per_epoch)
    history, seconds = common.fit(model, datasets, config, workdir, "subspace")

    sweep = evaluate.sweep(
        model,
        datasets.test,
        batchnorm_data=datasets.train_eval,
        alphas=evaluation_points(shape, config),
        batchnorm_steps=config.eval.batchnorm_steps,
        verbose=1,
    )
    labels = sweep.labels
    endpoints = evaluate.ensemble_probabilities([sweep.probabilities(a) for a in endpoint_alphas(shape)])
    result = {
        "shape": repr(shape),
        "history": history,
        "train_seconds": seconds,
        "along_subspace": sweep.rows,
        "endpoint_ensemble": evaluate.scores(endpoints, labels),
        "midpoint": evaluate.scores(sweep.probabilities(shape.center), labels),
    }
    if config.eval.random_ensemble:
        result["random_ensemble"] = random_ensemble(model, datasets, config)
    # Export the midpoint with its own batch-norm statistics, as evaluated.
    ts.recompute_batchnorm(model, datasets.train_eval, alpha=shape.center, steps=config.eval.batchnorm_steps)
    return model, result


def random_ensemble(model, datasets, config):
    """The ensemble of `eval.random_ensemble` points drawn as in training (001 §4.5, Fig. 11).

    One α for the whole network per point (the per_batch sampler's draw), each
    with its own batch-norm statistics; seeded by config.seed.
    """
    from tfsubspace import evaluate

    points = evaluate.random_points(model, config.eval.random_ensemble, seed=config.seed)
    result = common.ensemble_of_points(model, points, datasets, config)
    return {"points": points, "ensemble": result["ensemble"], "members": result["members"]}


def run(config, datasets, workdir):
    """method="subspace" (+ standard training when config.train.standard_baseline)."""
    results = {}
    if config.train.standard_baseline:
        standard_model, results["standard"], _ = standard.train_standard(config, datasets, workdir)
        # Scored under dataset shift beside the subspace (popped by the binary before reporting).
        results["shift_references"] = {"standard": standard_model}
    model, results["subspace"] = train_subspace(config, datasets, workdir)
    return model, results
