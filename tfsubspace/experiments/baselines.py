"""The baselines of the papers under the training binary (issue 4).

Every runner trains with the standard recipe of `common` (same model, data,
optimizer, weight decay, epochs and checkpoint/resume through `common.fit`,
its callbacks' state included), changes only what the baseline changes, and
scores every model with batch norm recomputed on training data, as subspace
points are scored, so the comparisons are fair (paper 001 §4):

- "standard_ensemble": `config.baseline.ensemble_size` standard models seeded
  config.seed + i (`standard.train_standard`, tags member_i); the ensemble
  averages their test probabilities (`ts.evaluate`). Returns member 0.
- "swa" (000 §D.4, 001 §4.3/§4.5): the standard cosine schedule until
  `swa_start_fraction` of training, then `swa_lr` (cyclic or constant) with
  `swa_num_checkpoints` checkpoints (`baselines.SWA`); reports the run's final
  weights, the SWA average, the SWA-checkpoint ensemble and a SWAG ensemble of
  `swag_samples` samples fitted to the same checkpoints, batch norm recomputed
  for each. Returns the SWA average.
- "snapshot" (Huang et al. 2017; 001 §4.5, 003 §6): cosine restarts from
  `train.learning_rate` with `num_snapshots` cycles over the run, one snapshot
  at the end of each (`baselines.snapshot_schedule`, `SnapshotEnsemble`).
  Returns the last snapshot.
- "fge" (003 §5, A.9): one run whose LR is the standard schedule until
  `fge_start_fraction` of training (the "usual training" of 003 A.9, cut
  there), then 003's triangular cycles of `fge_cycle_epochs` between
  `fge_alpha_1` and `fge_alpha_2` (`baselines.FGE(base=...)`), a snapshot at
  each cycle's minimum (`FGESnapshots`). Returns the last snapshot.

Each returns (the model to save and export, {method: result}); the result
holds the history, training seconds, the scores and `table_rows` for the report.
"""

from absl import logging

from tfsubspace.experiments import common, standard


def _test_scores_of(model, datasets):
    """Scores of a model whose batch norm is already set (e.g. a recomputed clone)."""
    return common.scores_of(model, datasets)[0]


def run_standard_ensemble(config, datasets, workdir):
    """method="standard_ensemble": k independently seeded standard models and their ensemble."""
    from tfsubspace import evaluation

    size = config.baseline.ensemble_size
    first, members, probabilities = None, [], []
    for i in range(size):
        seed = config.seed + i
        model, result, member_probabilities = standard.train_standard(
            config, datasets, workdir, seed=seed, tag=f"member_{i}"
        )
        first = model if first is None else first
        result.pop("table_rows", None)  # members' oracle rows are listed below, by member
        members.append({"seed": seed, **result})
        probabilities.append(member_probabilities)
    labels = evaluation.labels_of(datasets.test, probabilities[0].shape[-1])
    scores = evaluation.score_members(range(size), probabilities, labels)["ensemble"]
    rows = []
    for i, member in enumerate(members):
        rows.append(common.table_row(f"member {i} (seed {member['seed']})", {k: member[f"test_{k}"] for k in evaluation.SCORE_NAMES}))
        if "early_stopping_accuracy" in member:
            from tfsubspace.experiments import early_stopping

            row = early_stopping.table_row(member)
            rows.append({**row, "name": f"member {i}: {row['name']}"})
    entry = {
        **scores,
        "size": size,
        "train_seconds": float(sum(m["train_seconds"] for m in members)),
        "members": members,
        "table_rows": rows,
    }
    return first, {"standard_ensemble": entry}


def swa_callback_and_schedule(config, steps_per_epoch):
    """The SWA callback of config.baseline and the LR schedule of its run.

    With swa_protocol="authors" the first phase is the recipe's warm-up + cosine
    compressed into the epochs before the SWA start, so it anneals to 0 where
    the first checkpoint is taken; with "paper" the full-length cosine is cut there.
    """
    from tfsubspace.baselines import SWA

    baseline, epochs = config.baseline, config.train.epochs
    start = int(baseline.swa_start_fraction * epochs)
    swa = SWA(
        epochs=epochs,
        num_checkpoints=baseline.swa_num_checkpoints,
        start_epoch=start,
        swa_lr=baseline.swa_lr,
        lr_schedule=baseline.swa_lr_schedule,
        protocol=baseline.swa_protocol,
    )
    first_phase = start if baseline.swa_protocol == "authors" else None
    base = common.learning_rate_schedule(config, steps_per_epoch, epochs=first_phase)
    return swa, swa.learning_rate_schedule(base, steps_per_epoch)


def run_swa(config, datasets, workdir):
    """method="swa": SWA average, SWA-checkpoint ensemble and SWAG ensemble from one run."""
    from tfsubspace.baselines import SWAG

    baseline, steps = config.baseline, datasets.steps_per_epoch
    bn = dict(batchnorm_data=datasets.train_eval, batchnorm_steps=config.eval.batchnorm_steps)
    swa, schedule = swa_callback_and_schedule(config, steps)
    model = common.build_model(config, datasets)
    common.compile_model(model, config, steps, schedule=schedule)
    history, seconds = common.fit(model, datasets, config, workdir, "swa", callbacks=[swa])
    count = len(swa.checkpoints)

    averaged = swa.averaged_model(model=model, **bn)
    average = _test_scores_of(averaged, datasets)
    checkpoint_ensemble = swa.ensemble(datasets.test, model=model, verbose=1, **bn).to_dict()
    final, _ = common.test_scores(model, datasets, config)  # the run's last weights (= last checkpoint)
    result = {
        "history": history,
        "train_seconds": seconds,
        "start_epoch": swa.start_epoch,
        "checkpoint_epochs": list(swa.collected_at),
        "lr_schedule": baseline.swa_lr_schedule,
        "protocol": baseline.swa_protocol,
        "swa_lr": baseline.swa_lr,
        "final": final,
        "average": average,
        "checkpoint_ensemble": checkpoint_ensemble,
    }
    lr = f"{baseline.swa_lr_schedule} LR {baseline.swa_lr} from epoch {swa.start_epoch}"
    rows = [
        common.table_row(f"SWA run, final weights ({lr})", final),
        common.table_row(f"SWA average of {count} checkpoints (BN recomputed)", average),
        common.table_row(f"SWA-checkpoint ensemble of {count}", checkpoint_ensemble["ensemble"]),
    ]
    if baseline.swag_samples:
        swag = SWAG.from_swa(swa)
        result["swag_ensemble"] = swag.ensemble(
            datasets.test, num_samples=baseline.swag_samples, model=model, seed=config.seed, verbose=1, **bn
        ).to_dict()
        result["swag_rank"] = swag.rank
        rows.append(
            common.table_row(
                f"SWAG ensemble of {baseline.swag_samples} samples (rank {swag.rank}, BN recomputed per sample)",
                result["swag_ensemble"]["ensemble"],
            )
        )
    result["table_rows"] = rows
    return averaged, {"swa": result}


def run_snapshot(config, datasets, workdir):
    """method="snapshot": a snapshot ensemble from cosine cycles with restarts."""
    from tfsubspace.baselines import SnapshotEnsemble, model_with_weights, snapshot_schedule

    count, steps = config.baseline.num_snapshots, datasets.steps_per_epoch
    total_steps = config.train.epochs * steps
    if count > total_steps:
        raise ValueError(f"config.baseline.num_snapshots must be <= the run's {total_steps} steps, got {count}.")
    bn = dict(batchnorm_data=datasets.train_eval, batchnorm_steps=config.eval.batchnorm_steps)
    schedule = snapshot_schedule(config.train.learning_rate, total_steps, count)
    snapshots = SnapshotEnsemble(schedule)
    model = common.build_model(config, datasets)
    common.compile_model(model, config, steps, schedule=schedule)
    history, seconds = common.fit(model, datasets, config, workdir, "snapshot", callbacks=[snapshots])
    if len(snapshots.checkpoints) < count:
        # ⌈T/M⌉·M > T: the last cycle is cut short by < M steps, its LR already ≈ 0; take it at the end.
        snapshots.set_model(model)
        snapshots.collect(int(model.optimizer.iterations))
    ensemble = snapshots.ensemble(datasets.test, model=model, verbose=1, **bn).to_dict()
    last = model_with_weights(model, snapshots.checkpoints[-1], **bn)
    result = {
        "history": history,
        "train_seconds": seconds,
        "cycle_steps": int(schedule.first_decay_steps),
        "collected_at_steps": list(snapshots.collected_at),
        "ensemble": ensemble,
        "last_snapshot": ensemble["members"][-1],
        "table_rows": [
            common.table_row("last snapshot (BN recomputed)", ensemble["members"][-1]),
            common.table_row(
                f"snapshot ensemble of {len(snapshots.checkpoints)} (cosine restarts from {config.train.learning_rate})",
                ensemble["ensemble"],
            ),
        ],
    }
    return last, {"snapshot": result}


def fge_schedule(config, steps_per_epoch):
    """The run's `FGE` schedule: the standard schedule until the FGE start epoch, then 003's cycles."""
    from tfsubspace.baselines import FGE

    baseline = config.baseline
    start_epoch = round(baseline.fge_start_fraction * config.train.epochs)
    cycle_steps = max(2, 2 * round(baseline.fge_cycle_epochs * steps_per_epoch / 2))  # c must be even
    return FGE(
        alpha_1=baseline.fge_alpha_1,
        alpha_2=baseline.fge_alpha_2,
        cycle_steps=cycle_steps,
        start_step=start_epoch * steps_per_epoch,
        base=common.learning_rate_schedule(config, steps_per_epoch),
    )


def run_fge(config, datasets, workdir):
    """method="fge": pre-training then FGE cycles in one run; the ensemble of the snapshots at the minima."""
    from tfsubspace.baselines import FGESnapshots, model_with_weights

    steps = datasets.steps_per_epoch
    schedule = fge_schedule(config, steps)
    snapshots = FGESnapshots(schedule)
    total_steps = config.train.epochs * steps
    expected = snapshots.due_count(total_steps)
    if expected < 1:
        raise ValueError(
            f"config.baseline.fge_cycle_epochs={config.baseline.fge_cycle_epochs} gives no FGE cycle minimum within "
            f"the {total_steps - schedule.start_step} steps after the FGE start: lower it or fge_start_fraction."
        )
    logging.info(
        "FGE: cycles of %d steps from step %d, %d snapshots.", schedule.cycle_steps, schedule.start_step, expected
    )
    bn = dict(batchnorm_data=datasets.train_eval, batchnorm_steps=config.eval.batchnorm_steps)
    model = common.build_model(config, datasets)
    common.compile_model(model, config, steps, schedule=schedule)
    history, seconds = common.fit(model, datasets, config, workdir, "fge", callbacks=[snapshots])
    ensemble = snapshots.ensemble(datasets.test, model=model, verbose=1, **bn).to_dict()
    last = model_with_weights(model, snapshots.checkpoints[-1], **bn)
    count = len(snapshots.checkpoints)
    result = {
        "history": history,
        "train_seconds": seconds,
        "start_epoch": schedule.start_step // steps,
        "cycle_steps": schedule.cycle_steps,
        "alpha_1": schedule.alpha_1,
        "alpha_2": schedule.alpha_2,
        "collected_at_steps": list(snapshots.collected_at),
        "ensemble": ensemble,
        "last_snapshot": ensemble["members"][-1],
        "table_rows": [
            common.table_row("last FGE snapshot (BN recomputed)", ensemble["members"][-1]),
            common.table_row(
                f"FGE ensemble of {count} (cycle {schedule.cycle_steps} steps, from epoch {schedule.start_step // steps})",
                ensemble["ensemble"],
            ),
        ],
    }
    return last, {"fge": result}
