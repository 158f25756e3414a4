"""The metrics of every evaluation: accuracy, NLL, ECE, Brier score, disagreement.

`scores(probabilities, labels)` scores one predictive distribution with the
streaming metrics of `tfsubspace.metrics` (in float64), so a number printed by
a sweep, a curve, an ensemble or the binary is the same metric a user
compiles. For ensembles, `disagreement(members)` is the fraction of examples
on which two members predict different classes, averaged over all pairs.

Example:

>>> import numpy as np
>>> from tfsubspace.evaluation.scores import scores, disagreement
>>> p = np.array([[0.9, 0.1], [0.4, 0.6]])
>>> {k: round(v, 4) for k, v in scores(p, np.array([0, 0])).items()}
{'accuracy': 0.5, 'nll': 0.5108, 'ece': 0.35, 'brier': 0.37}
>>> disagreement([p, p[:, ::-1]])
1.0
"""

import itertools

import numpy as np

from tfsubspace import metrics

SCORE_NAMES = ("accuracy", "nll", "ece", "brier")


def _metric(metric, *args):
    metric.update_state(*args)
    return float(metric.result())


def scores(probabilities, labels, num_bins=15):
    """{"accuracy", "nll", "ece", "brier"} of probabilities [N, C] against class indices [N]."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    # Probabilities by construction (heads.to_probabilities): no guessing.
    known = dict(from_logits=False, dtype="float64")
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == labels)),
        "nll": _metric(metrics.NegativeLogLikelihood(**known), labels, probabilities),
        "ece": _metric(metrics.ExpectedCalibrationError(num_bins=num_bins, **known), labels, probabilities),
        "brier": _metric(metrics.BrierScore(**known), labels, probabilities),
    }


def ensemble_probabilities(member_probabilities):
    """The ensemble's prediction: the mean of the members' probabilities."""
    return np.mean(np.stack([np.asarray(p, np.float64) for p in member_probabilities]), axis=0)


def disagreement(member_probabilities):
    """Mean over member pairs of the fraction of examples with different top-1 classes."""
    predictions = [np.argmax(p, axis=-1) for p in member_probabilities]
    pairs = list(itertools.combinations(predictions, 2))
    if not pairs:
        return 0.0
    return float(np.mean([np.mean(a != b) for a, b in pairs]))


def total_variation(first, second):
    """Mean total-variation distance ½‖p1 − p2‖₁ between two predictive distributions."""
    return _metric(
        metrics.TotalVariationDistance(from_logits=False, dtype="float64"), np.asarray(first, np.float64), np.asarray(second, np.float64)
    )
