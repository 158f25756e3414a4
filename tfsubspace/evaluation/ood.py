"""Out-of-distribution detection scores: AUROC and AUPR (Hendrycks & Gimpel 2017).

Out-of-distribution examples are the positive class. Two scores rank them:
one minus the maximum predicted probability, and the predictive entropy
−Σ p log p. AUROC is the probability that a random out-of-distribution example
scores above a random in-distribution one (ties count one half); AUPR is the
average precision Σ_k (R_k − R_{k−1})·P_k over the distinct thresholds.

Example:

>>> import numpy as np
>>> from tfsubspace.evaluation.ood import auroc, aupr
>>> labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
>>> auroc(labels, scores), round(aupr(labels, scores), 4)
(0.75, 0.8333)
"""

import keras
import numpy as np

from tfsubspace.evaluation import heads
from tfsubspace.evaluation.batchnorm import batchnorm_layers, preserved_point
from tfsubspace.evaluation.forward import (
    DEFAULT_BATCHNORM_STEPS,
    check_points,
    check_subspace_model,
    check_temperature,
    place,
    predict_inputs,
)
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import ensemble_probabilities


def _average_ranks(values):
    """Ranks 1..N of `values`, ties sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def auroc(is_positive, scores):
    """Area under the ROC curve of `scores` for the binary labels `is_positive`."""
    is_positive, scores = np.asarray(is_positive, bool), np.asarray(scores, np.float64)
    positives, negatives = int(is_positive.sum()), int((~is_positive).sum())
    if not positives or not negatives:
        raise ValueError("AUROC needs both in- and out-of-distribution examples.")
    ranks = _average_ranks(scores)
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def aupr(is_positive, scores):
    """Average precision of `scores` for the binary labels `is_positive` (positives ranked first)."""
    is_positive, scores = np.asarray(is_positive, bool), np.asarray(scores, np.float64)
    if not is_positive.any():
        raise ValueError("AUPR needs out-of-distribution examples.")
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], is_positive[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    true_positives = np.cumsum(hits)[last_of_threshold]
    precision = true_positives / (last_of_threshold + 1.0)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def entropy(probabilities):
    """Predictive entropy −Σ p log p per example (0·log 0 = 0)."""
    p = np.asarray(probabilities, np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def ood_table(in_probabilities, out_probabilities):
    """The AUROC/AUPR `Table` of two predictive distributions (in, out)."""
    is_out = np.r_[np.zeros(len(in_probabilities), bool), np.ones(len(out_probabilities), bool)]
    both = np.concatenate([in_probabilities, out_probabilities])
    rows = []
    for name, score in (("max_probability", 1.0 - both.max(axis=-1)), ("entropy", entropy(both))):
        rows.append({"score": name, "auroc": auroc(is_out, score), "aupr": aupr(is_out, score)})
    return Table(rows, **{row["score"]: {"auroc": row["auroc"], "aupr": row["aupr"]} for row in rows})


def ood(model_or_members, in_data, out_data, *, alphas=None, batchnorm_data=None,
        batchnorm_steps=DEFAULT_BATCHNORM_STEPS, from_logits=None, temperature=1.0, verbose="auto"):
    """AUROC and AUPR of telling `out_data` from `in_data`, by max probability and by entropy.

    Args:
        model_or_members: a Keras model (a SubspaceModel at its current
            point), a list of Keras models (their ensemble), or a SubspaceModel
            with `alphas` (the ensemble of those points).
        in_data, out_data: inputs (tf.data.Dataset, arrays, or (x, y) tuples;
            labels are not used).
        alphas: points α of a SubspaceModel to ensemble.
        batchnorm_data, batchnorm_steps: batch-norm recompute at each α.
        from_logits, temperature, verbose: as in `sweep`.

    Returns:
        A `Table` with rows {"score", "auroc", "aupr"} for "max_probability"
        and "entropy", also as `result["entropy"]["auroc"]` etc.

    Example:

    >>> import numpy as np, keras, tfsubspace as ts
    >>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> result = ts.evaluate.ood(net, np.zeros((8, 2), "float32"), 5 * np.ones((8, 2), "float32"))
    >>> [row["score"] for row in result]
    ['max_probability', 'entropy']
    """
    temperature = check_temperature(temperature)
    heads.check_from_logits(from_logits)
    if alphas is not None:
        model = check_subspace_model(model_or_members, "model_or_members")
        points = check_points(model, alphas, "alphas")
        if batchnorm_data is None and batchnorm_layers(model):
            raise ValueError("`batchnorm_data` is required: the model has batch norm, recomputed at every α.")
        ins, outs = [], []
        with preserved_point(model), Progress(len(points), verbose, title="ood") as progress:
            for alpha in points:
                place(model, alpha=alpha, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps)
                ins.append(predict_inputs(model, in_data, from_logits=from_logits, temperature=temperature, name="in_data"))
                outs.append(predict_inputs(model, out_data, from_logits=from_logits, temperature=temperature, name="out_data"))
                progress.advance()
        return ood_table(ensemble_probabilities(ins), ensemble_probabilities(outs))
    members = list(model_or_members) if isinstance(model_or_members, (list, tuple)) else [model_or_members]
    if not members or not all(isinstance(m, keras.Model) for m in members):
        raise ValueError("`model_or_members` must be a keras.Model or a non-empty list of them (points need `alphas=`).")
    ins = [predict_inputs(m, in_data, from_logits=from_logits, temperature=temperature, name="in_data") for m in members]
    outs = [predict_inputs(m, out_data, from_logits=from_logits, temperature=temperature, name="out_data") for m in members]
    classes = {p.shape[-1] for p in ins + outs}
    if len(classes) > 1:
        raise ValueError(f"`model_or_members` must predict the same number of classes, got {sorted(classes)}.")
    return ood_table(ensemble_probabilities(ins), ensemble_probabilities(outs))
