"""One ensemble over predictors: Keras models, or points α of one SubspaceModel.

The ensemble's prediction is the mean of the members' probabilities. The
result is a `Table` with one row for the ensemble (with the members'
`disagreement`) and one per member, and the named parts "ensemble" and
"members". Every ensemble of the library (subspace points, SWA/SWAG/snapshot/
FGE checkpoints, ESPRO) goes through `score_members`.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> nets = [keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name=f"d{i}")], name=f"net{i}")
...         for i in range(2)]
>>> x, y = np.random.rand(8, 2).astype("float32"), np.arange(8) % 3
>>> result = ts.evaluate.ensemble(nets, (x, y))
>>> [row["member"] for row in result]
['ensemble', 'net0', 'net1']
>>> sorted(result["ensemble"])
['accuracy', 'brier', 'disagreement', 'ece', 'nll']
"""

import keras

from tfsubspace.evaluation import heads
from tfsubspace.evaluation.batchnorm import batchnorm_layers, preserved_point
from tfsubspace.evaluation.forward import (
    DEFAULT_BATCHNORM_STEPS,
    check_points,
    check_subspace_model,
    check_temperature,
    predict,
    predict_at,
)
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import batches, check_int
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import disagreement, ensemble_probabilities, scores


def score_members(names, member_probabilities, labels, num_bins=15, **parts):
    """The ensemble `Table` of members' probabilities (same labels, same classes)."""
    classes = {p.shape[-1] for p in member_probabilities}
    if len(classes) > 1:
        raise ValueError(f"ensemble members must predict the same number of classes, got {sorted(classes)}.")
    combined = {
        **scores(ensemble_probabilities(member_probabilities), labels, num_bins),
        "disagreement": disagreement(member_probabilities),
    }
    members = [{"member": name, **scores(p, labels, num_bins)} for name, p in zip(names, member_probabilities)]
    return Table([{"member": "ensemble", **combined}] + members, ensemble=combined, members=members, **parts)


def member_probabilities(members, test_data, *, model=None, batchnorm_data=None,
                         batchnorm_steps=DEFAULT_BATCHNORM_STEPS, from_logits=None, temperature=1.0,
                         verbose="auto", title="ensemble"):
    """([names], [probabilities], labels) of Keras models or of points α of `model`."""
    if isinstance(members, (str, bytes)) or not hasattr(members, "__iter__"):
        raise ValueError(f"`members` must be a list of Keras models or points α, got {members!r}.")
    members = list(members)
    if not members:
        raise ValueError("`members` must hold at least one model or point.")
    temperature = check_temperature(temperature)
    heads.check_from_logits(from_logits)
    test_data = batches(test_data, "test_data")
    outputs, labels = [], None
    if model is not None:
        check_subspace_model(model)
        points = check_points(model, members, "members")
        if batchnorm_data is None and batchnorm_layers(model):
            raise ValueError("`batchnorm_data` is required: `model` has batch norm, recomputed at every point.")
        logits = heads.outputs_logits(model, from_logits)
        with preserved_point(model), Progress(len(points), verbose, title=title) as progress:
            for alpha in points:
                probabilities, labels = predict_at(
                    model, test_data, alpha=alpha, batchnorm_data=batchnorm_data,
                    batchnorm_steps=batchnorm_steps, from_logits=logits, temperature=temperature,
                )
                outputs.append(probabilities)
                progress.advance()
        return points, outputs, labels
    for index, member in enumerate(members):
        if not isinstance(member, keras.Model):
            raise ValueError(
                f"`members[{index}]` is a {type(member).__name__}, not a keras.Model; "
                "to ensemble points α of a subspace, pass `model=` too."
            )
    with Progress(len(members), verbose, title=title) as progress:
        for member in members:
            probabilities, labels = predict(member, test_data, from_logits=from_logits, temperature=temperature)
            outputs.append(probabilities)
            progress.advance()
    return [member.name for member in members], outputs, labels


def ensemble(
    members,
    test_data,
    *,
    model=None,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    from_logits=None,
    num_bins=15,
    temperature=1.0,
    verbose="auto",
):
    """Scores an ensemble (mean of member probabilities) and each member.

    Args:
        members: a list of Keras models, or, with `model`, a list of points α
            of that SubspaceModel (e.g. from `random_points`).
        test_data: (x, y) batches (see `tfsubspace.evaluation.reader`).
        model: the SubspaceModel whose points `members` are.
        batchnorm_data: training batches for the per-point batch-norm
            recompute (required with a `model` that has batch norm).
        batchnorm_steps, from_logits, num_bins, temperature, verbose: as in
            `sweep`.

    Returns:
        A `Table`: rows {"member", "accuracy", "nll", "ece", "brier"} (the
        ensemble's first, with "disagreement"), and `result["ensemble"]`,
        `result["members"]`. A `model` is left at its point.
    """
    check_int(num_bins, "num_bins", 1)
    names, outputs, labels = member_probabilities(
        members, test_data, model=model, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps,
        from_logits=from_logits, temperature=temperature, verbose=verbose,
    )
    return score_members(names, outputs, labels, num_bins)
