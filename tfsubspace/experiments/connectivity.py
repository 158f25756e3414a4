"""Connecting and growing from trained networks (papers 003 and 004) in the training binary.

Two methods, each starting from models trained with exactly the standard
recipe (`standard.train_standard`, so they checkpoint and resume like it):

- method="connect" (003 §3–§5): two standard models (seeds config.seed and
  config.seed + 1), one fixed-endpoint curve per config.connect.shapes
  trained between them (`ts.connect`, t ~ U(0, 1) per batch, SGD with
  momentum and weight decay, cosine decay from config.connect.learning_rate
  over config.connect.epochs), each evaluated with `ts.evaluate.curve` on
  config.connect.points values of t with batch norm recomputed at every t;
  the report gets the paper 003 Table 2 summary (segment vs each curve),
  ensembles along the curves next to the ensemble of the two endpoints, the
  loss/error plane through (w_a, the first curve's bend, w_b) as
  `plane_<shape>.png`, and, when config.connect.fge_cycles > 0, Fast
  Geometric Ensembling started from endpoint 0 (003 §5, A.9).
- method="spro" (004 §5): config.spro.num_models standard models (seeds
  config.seed + i), each grown to a simplex of config.spro.num_vertices
  vertices with `ts.spro.grow`; the report compares ESPRO (points sampled
  from every simplex) with the deep ensemble of the base models.

Resuming after a kill: the standard models, the curves and FGE train through
`common.fit` and resume from their last finished epoch. `ts.spro.grow` runs
its own `fit` (one per new vertex, with a fresh optimizer) and has no
`initial_epoch`, so SPRO checkpoints per vertex instead: every finished
vertex is written to `checkpoints/spro_<i>/vertices-NNNNN/` (verified like
the epoch checkpoints: `vertex_checkpoints`), and a restarted run restores the
largest good simplex grown so far and retrains only the vertices after it.
Evaluation is not checkpointed (it is recomputed on a restart).

Example:

>>> from tfsubspace.experiments import runner
>>> runner("connect").__name__, runner("spro").__name__
('run_connect', 'run_spro')
>>> curve_ensemble_points(5)
[0.0, 0.25, 0.5, 0.75, 1.0]
"""

import os
import time

import keras
import numpy as np
from absl import logging

from tfsubspace.experiments import common, standard, vertex_checkpoints

#: The curve classes of config.connect.shapes, by name.
CURVE_NAMES = {"bezier": "Bezier", "polychain": "PolyChain"}


def curve_ensemble_points(num):
    """`num` evenly spaced t in [0, 1] (the endpoints included when num >= 2)."""
    if num == 1:
        return [0.5]
    return [round(float(t), 10) for t in np.linspace(0.0, 1.0, num)]


def cosine_schedule(learning_rate, epochs, steps_per_epoch):
    """Cosine decay from `learning_rate` to 0 over `epochs` (no warm-up: training starts from trained weights)."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate, decay_steps=max(1, epochs * steps_per_epoch)
    )


def _standard_row(name, result):
    return {"name": name, "accuracy": result["test_accuracy"], "nll": result["test_nll"], "ece": result["test_ece"]}


def _subset(data, examples, batch_size):
    """The first `examples` examples of a batched dataset (None: all of it), batched by `batch_size`."""
    if examples is None:
        return data
    return data.unbatch().take(examples).batch(batch_size)


# -- method="connect" ------------------------------------------------------------


def train_curve(shape_name, model_a, model_b, config, datasets, workdir):
    """Connects the two models with a curve and trains its bends (or resumes); returns (model, result)."""
    import tfsubspace as ts

    connect = config.connect
    shape = ts.Bezier(connect.num_bends) if shape_name == "bezier" else ts.PolyChain(connect.num_bends)
    # The reference's curve recipe: ½·wd·‖θ(t)‖² in the loss, no optimizer weight decay.
    model = ts.connect(model_a, model_b, shape, seed=config.seed, weight_decay=config.train.weight_decay)
    learning_rate = connect.learning_rate if connect.learning_rate is not None else config.train.learning_rate
    schedule = cosine_schedule(learning_rate, connect.epochs, datasets.steps_per_epoch)
    curve_config = config.copy_and_resolve_references()
    curve_config.train.weight_decay = 0.0
    common.compile_model(model, curve_config, datasets.steps_per_epoch, schedule=schedule)
    history, seconds = common.fit(model, datasets, config, workdir, f"curve_{shape_name}", epochs=connect.epochs)
    return model, {"shape": repr(shape), "history": history, "train_seconds": seconds}


def _curve_table(evaluations):
    """One paper 003 Table 2 style table: Single, Segment, then every curve."""
    lines = evaluations[0].to_markdown().splitlines()
    for evaluation in evaluations[1:]:
        lines.append(evaluation.to_markdown().splitlines()[-1])
    return "\n".join(lines)


def _fge(model_a, config, datasets, workdir):
    """FGE (003 §5, Alg. 1) from the trained endpoint 0; returns its result entry."""
    from tfsubspace.baselines import FGE, FGESnapshots

    connect = config.connect
    model = common.build_model(config, datasets, seed=config.seed)
    model.set_weights(model_a.get_weights())
    cycle_steps = connect.fge_cycle_epochs * datasets.steps_per_epoch
    cycle_steps += cycle_steps % 2  # FGE needs an even cycle length
    schedule = FGE(alpha_1=connect.fge_alpha_1, alpha_2=connect.fge_alpha_2, cycle_steps=cycle_steps)
    snapshots = FGESnapshots(schedule)
    common.compile_model(model, config, datasets.steps_per_epoch, schedule=schedule)
    epochs = connect.fge_cycles * connect.fge_cycle_epochs
    history, seconds = common.fit(model, datasets, config, workdir, "fge", callbacks=[snapshots], epochs=epochs)
    scored = snapshots.ensemble(
        datasets.test, batchnorm_data=datasets.train_eval, batchnorm_steps=config.eval.batchnorm_steps, verbose=1
    )
    count = len(snapshots.checkpoints)
    name = (
        f"FGE from endpoint 0: ensemble of {count} snapshots "
        f"({connect.fge_cycles} cycles × {connect.fge_cycle_epochs} epochs)"
    )
    rows = [common.table_row(name, scored["ensemble"])]
    if scored["members"]:
        rows.append(common.table_row("FGE from endpoint 0: last snapshot", scored["members"][-1]))
    return {
        "history": history,
        "train_seconds": seconds,
        "cycle_steps": cycle_steps,
        "collected_at": list(snapshots.collected_at),
        "ensemble": scored["ensemble"],
        "members": scored["members"],
        "table_rows": rows,
    }


def run_connect(config, datasets, workdir):
    """method="connect": returns (the first curve, BN at t = ½; {"connect": ..., ["fge": ...]})."""
    import tfsubspace as ts
    from tfsubspace import evaluate

    connect = config.connect
    seconds = {}
    start = time.time()
    endpoints = [
        standard.train_standard(config, datasets, workdir, seed=config.seed + i, tag=f"endpoint_{i}")
        for i in range(2)
    ]
    seconds["endpoints"] = time.time() - start
    (model_a, result_a, probabilities_a), (model_b, result_b, probabilities_b) = endpoints
    labels = evaluate.labels_of(datasets.test, probabilities_a.shape[-1])
    pair = evaluate.score_members(range(2), [probabilities_a, probabilities_b], labels)["ensemble"]
    rows = [
        _standard_row(f"endpoint 0 (seed {config.seed})", result_a),
        _standard_row(f"endpoint 1 (seed {config.seed + 1})", result_b),
        common.table_row("ensemble of the 2 endpoints", pair),
    ]

    train_metrics_data = _subset(datasets.train_eval, connect.train_examples, config.eval.batch_size)
    curves, models, evaluations = {}, {}, []
    ensemble_alphas = curve_ensemble_points(connect.ensemble_points)
    for index, shape_name in enumerate(connect.shapes):
        start = time.time()
        model, result = train_curve(shape_name, model_a, model_b, config, datasets, workdir)
        seconds[f"train_{shape_name}"] = time.time() - start
        start = time.time()
        # The segment depends only on the endpoints: evaluated once, with the first curve.
        evaluation = evaluate.curve(
            model,
            train_metrics_data,
            datasets.test,
            points=connect.points,
            batchnorm_steps=config.eval.batchnorm_steps,
            weight_decay=config.train.weight_decay,
            segment=index == 0,
            name=CURVE_NAMES[shape_name],
            verbose=1,
        )
        seconds[f"evaluate_{shape_name}"] = time.time() - start
        ensemble = common.ensemble_of_points(model, ensemble_alphas, datasets, config)
        label = CURVE_NAMES[shape_name]
        for member in ensemble["members"]:
            if member["member"] == 0.5:
                rows.append(common.table_row(f"{label} at t = 0.5", member))
        rows.append(common.table_row(f"{label}: ensemble of {len(ensemble_alphas)} points t = {ensemble_alphas}", ensemble["ensemble"]))
        result.update(evaluation=evaluation.to_dict(), ensemble=ensemble.to_dict())
        curves[shape_name] = result
        models[shape_name] = model
        evaluations.append(evaluation)

    first = connect.shapes[0]
    curve_model = models[first]
    start = time.time()
    bend = ts.connectivity.flat_weights(curve_model, point=(curve_model.subspace_shape.num_points - 1) // 2)
    plane_path = os.path.join(workdir, f"plane_{first}.png")
    plane = ts.plane(
        (0.0, 1.0, bend),
        curve_model,
        _subset(datasets.test, connect.plane_examples, config.eval.batch_size),
        grid=connect.plane_grid,
        batchnorm_data=datasets.train_eval,
        batchnorm_steps=connect.plane_batchnorm_steps,
        path=plane_path,
        weight_decay=config.train.weight_decay,
        labels=("w_a (endpoint 0)", "w_b (endpoint 1)", f"{CURVE_NAMES[first]} bend"),
        verbose=1,
        title=f"Test loss and error on the plane through the endpoints and the {CURVE_NAMES[first]} bend",
    )
    seconds["plane"] = time.time() - start

    fge = None
    if connect.fge_cycles > 0:
        start = time.time()
        fge = _fge(model_a, config, datasets, workdir)
        seconds["fge"] = time.time() - start

    train_note = "all" if connect.train_examples is None else f"the first {connect.train_examples}"
    section = (
        f"### Curves between two trained models (paper 003 Table 2 format)\n\n"
        f"{_curve_table(evaluations)}\n\n"
        f"{connect.points} values of t, batch norm recomputed at each on {config.eval.batchnorm_steps} batches of "
        f"{config.eval.batch_size} training examples; train loss = cross-entropy + "
        f"({config.train.weight_decay:g}/2)·‖θ(t)‖² on {train_note} training examples; test on all "
        f"{datasets.test_size}. Int: mean over the uniform distribution on the curve (arc length). "
        f"Plane: {os.path.basename(plane_path)} ({connect.plane_grid}×{connect.plane_grid} grid, "
        f"{connect.plane_examples} test examples)."
    )
    results = {
        "connect": {
            "endpoints": [result_a, result_b],
            "curves": curves,
            "plane": plane.to_dict(),
            "seconds": seconds,
            "table_rows": rows,
            "markdown": [section],
        }
    }
    if fge is not None:
        results["fge"] = fge
    # The exported model: the first curve at t = ½ with its own batch-norm statistics.
    ts.recompute_batchnorm(curve_model, datasets.train_eval, alpha=0.5, steps=config.eval.batchnorm_steps)
    return curve_model, results


# -- method="spro" ---------------------------------------------------------------


def _spro_optimizer(config, steps_per_epoch):
    spro_config = config.spro

    def make():
        schedule = cosine_schedule(spro_config.learning_rate, spro_config.epochs_per_vertex, steps_per_epoch)
        return common.build_optimizer(config, steps_per_epoch, schedule=schedule)

    return make


def grow_simplex(base_model, config, datasets, workdir, index):
    """Grows `base_model` to config.spro.num_vertices vertices, one checkpoint per finished vertex.

    Returns the `SimplexModel`; its `spro_history` lists per vertex λ_k, the
    final log-volume, the fit history and the seconds it took.
    """
    from tfsubspace.connectivity import spro

    spro_config = config.spro
    directory = common.checkpoint_directory(workdir, f"spro_{index}")
    seed = config.seed + index

    def grow(start, num_vertices, epochs):
        return spro.grow(
            start,
            num_vertices,
            epochs,
            spro_config.lmbda,
            spro_config.samples,
            train_data=datasets.train_epochs(0),
            steps_per_epoch=datasets.steps_per_epoch,
            loss=base_model.loss,  # the standard recipe's loss, as compiled by train_standard
            optimizer=_spro_optimizer(config, datasets.steps_per_epoch),
            metrics=["accuracy"],
            seed=seed,
            verbose=2,
        )

    # Rebuilding a saved simplex's structure: growing to its size without training.
    current, have = vertex_checkpoints.restore_newest(lambda size: grow(base_model, size, 0), directory)
    if current is None:
        current = base_model
    else:
        logging.info("Resuming SPRO simplex %d from %d vertices.", index, have)
    for num_vertices in range(have + 1, spro_config.num_vertices + 1):
        start = time.time()
        current = grow(current, num_vertices, spro_config.epochs_per_vertex)
        current.spro_history[-1]["seconds"] = time.time() - start
        vertex_checkpoints.save(current, directory)
    return current


def run_spro(config, datasets, workdir):
    """method="spro": returns (the first simplex, BN at its center; {"spro": ...})."""
    import tfsubspace as ts
    from tfsubspace import evaluate

    spro_config = config.spro
    seconds = {"base_models": 0.0, "grow": 0.0}
    bases, simplexes, rows = [], [], []
    for index in range(spro_config.num_models):
        start = time.time()
        model, result, _ = standard.train_standard(
            config, datasets, workdir, seed=config.seed + index, tag=f"base_{index}"
        )
        seconds["base_models"] += time.time() - start
        start = time.time()
        simplexes.append(grow_simplex(model, config, datasets, workdir, index))
        seconds["grow"] += time.time() - start
        bases.append(result)
        rows.append(_standard_row(f"base model {index} (seed {config.seed + index})", result))

    start = time.time()
    scored = ts.spro.ensemble(
        simplexes,
        spro_config.ensemble_samples,
        datasets.test,
        batchnorm_data=datasets.train_eval,
        batchnorm_steps=config.eval.batchnorm_steps,
        seed=config.seed,
        verbose=1,
    )
    centers = []
    for index, simplex in enumerate(simplexes):
        probabilities, labels = evaluate.predict_at(
            simplex, datasets.test, alpha=simplex.subspace_shape.center, batchnorm_data=datasets.train_eval,
            batchnorm_steps=config.eval.batchnorm_steps,
        )
        centers.append(evaluate.scores(probabilities, labels))
        rows.append(common.table_row(f"simplex {index}: center", centers[-1]))
        rows.append(
            common.table_row(f"simplex {index}: ensemble of {spro_config.ensemble_samples} samples", scored["simplexes"][index])
        )
    seconds["evaluate"] = time.time() - start
    size, vertices = spro_config.num_models, spro_config.num_vertices
    rows.append(common.table_row(f"deep ensemble of the {size} base models", scored["deep_ensemble"]))
    rows.append(
        common.table_row(f"ESPRO: {size} simplexes × {vertices} vertices, {spro_config.ensemble_samples} samples each",
             scored["espro"])
    )

    lines = [
        "### SPRO vertices (paper 004)",
        "",
        "| simplex | vertex | λ_k | log-volume after | last-epoch loss | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for index, simplex in enumerate(simplexes):
        for entry in simplex.spro_history:
            loss = entry["fit"].get("loss", [float("nan")])[-1] if entry["fit"] else float("nan")
            lines.append(
                f"| {index} | {entry['vertex']} | {entry['volume_weight']:.3g} | {entry['log_volume']:.3f} | "
                f"{loss:.4f} | {entry.get('seconds', float('nan')):.0f} |"
            )
    lines += [
        "",
        f"λ = {spro_config.lmbda:g} normalised per vertex by |log V| of a random simplex (004 Eq. A.3); "
        f"{spro_config.samples} samples per step, {spro_config.epochs_per_vertex} epochs per vertex at "
        f"learning rate {spro_config.learning_rate:g} (cosine). ESPRO and every point: batch norm recomputed "
        f"on {config.eval.batchnorm_steps} batches.",
    ]
    result = {
        "base_models": bases,
        "simplexes": [
            {"spro_history": s.spro_history, "center": c, "ensemble": e, "points": p}
            for s, c, e, p in zip(simplexes, centers, scored["simplexes"], scored["points"])
        ],
        "espro": scored["espro"],
        "deep_ensemble": scored["deep_ensemble"],
        "seconds": seconds,
        "table_rows": rows,
        "markdown": ["\n".join(lines)],
    }
    first = simplexes[0]
    ts.recompute_batchnorm(first, datasets.train_eval, alpha=first.subspace_shape.center, steps=config.eval.batchnorm_steps)
    return first, {"spro": result}
