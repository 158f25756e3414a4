"""Evaluation: one core that scores any model at any point, on any labelled data.

- `forward`: the one forward pass at a point (`model.set_point` + batch norm);
- `batchnorm`: exact batch-norm statistics at a point (`ts.recompute_batchnorm`)
  and `preserved_point`, which puts a model back where it was;
- `reader`: the one reader of test data (tf.data, numpy tuples, dicts; sparse
  or one-hot labels);
- `heads`: logits or probabilities, decided once (argument, compiled loss,
  final activation);
- `scores`: accuracy, NLL, ECE, Brier score, disagreement (`tfsubspace.metrics`);
- `ensemble`, `sweep`, `curve` (paper 003 Table 2), `ood`, `fit_temperature`,
  `shift` (dataset shift: corruptions and severities), all returning a `Table` of rows (or its subclasses);
- `progress`: Keras progress bars (`verbose="auto"`);
- `walk`: the one walk over a model's layers (graph order, nested models).

`ts.evaluate` is this package's public face. Batch norm lives here because a point of a subspace is
coefficients plus the statistics recomputed there.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
>>> net.compile(loss="sparse_categorical_crossentropy")
>>> x, y = np.random.rand(16, 2).astype("float32"), np.arange(16) % 3
>>> result = ts.evaluate.ensemble([net], (x, np.eye(3)[y]))  # one-hot labels, a softmax head
>>> bool(np.isclose(result["ensemble"]["nll"], net.evaluate(x, y, verbose=0), atol=1e-5))
True
"""

from tfsubspace.evaluation.batchnorm import preserved_point, recompute_batchnorm
from tfsubspace.evaluation.curve import METRICS, CurveEvaluation, curve, summarize
from tfsubspace.evaluation.curve_geometry import curve_length, length_ratio
from tfsubspace.evaluation.ensemble import ensemble, score_members
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS, place, predict, predict_at, predict_inputs
from tfsubspace.evaluation.heads import outputs_logits, to_probabilities
from tfsubspace.evaluation.ood import aupr, auroc, ood
from tfsubspace.evaluation.points import default_points, random_points
from tfsubspace.evaluation.reader import batches, labels_of, sparse_labels
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import SCORE_NAMES, disagreement, ensemble_probabilities, scores, total_variation
from tfsubspace.evaluation.shift import SEVERITIES, relative_change, shift
from tfsubspace.evaluation.sweep import Sweep, sweep
from tfsubspace.evaluation.temperature import fit_temperature

__all__ = [
    "DEFAULT_BATCHNORM_STEPS",
    "METRICS",
    "SCORE_NAMES",
    "SEVERITIES",
    "CurveEvaluation",
    "Sweep",
    "Table",
    "aupr",
    "auroc",
    "batches",
    "curve",
    "curve_length",
    "default_points",
    "disagreement",
    "ensemble",
    "ensemble_probabilities",
    "fit_temperature",
    "labels_of",
    "length_ratio",
    "ood",
    "outputs_logits",
    "place",
    "predict",
    "predict_at",
    "predict_inputs",
    "preserved_point",
    "random_points",
    "recompute_batchnorm",
    "relative_change",
    "score_members",
    "scores",
    "shift",
    "sparse_labels",
    "summarize",
    "sweep",
    "to_probabilities",
    "total_variation",
]
