"""`ts.evaluate`: the public face of `tfsubspace.evaluation`.

Sweeps along a subspace, ensembles, curves (paper 003 Table 2), temperature
scaling and out-of-distribution scores, all on one evaluation core that knows
logits from probabilities and reads any labelled data (see
`tfsubspace.evaluation`). `predict_probabilities` and `probabilities_at` keep
the names of earlier versions; they return the core's probabilities alone.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> ts.evaluate.sweep is ts.evaluation.sweep, ts.evaluate.DEFAULT_BATCHNORM_STEPS
(True, 20)
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
>>> data = (np.ones((4, 2), "float32"), np.arange(4) % 3)
>>> bool(np.allclose(ts.evaluate.predict_probabilities(net, data), net.predict(data[0], verbose=0), atol=1e-6))
True
"""

from tfsubspace.evaluation import *  # noqa: F401,F403
from tfsubspace.evaluation import __all__ as _core_names
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS, predict, predict_at


def predict_probabilities(model, data, from_logits=None, temperature=1.0):
    """Float64 probabilities of `model` at its current point on (x, y) batches of `data`."""
    return predict(model, data, from_logits=from_logits, temperature=temperature)[0]


def probabilities_at(model, alpha, test_data, batchnorm_data, batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
                     from_logits=None, temperature=1.0):
    """Test probabilities of a SubspaceModel at α, batch norm recomputed there (it stays at α)."""
    return predict_at(model, test_data, alpha=alpha, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps,
                      from_logits=from_logits, temperature=temperature)[0]


__all__ = [*_core_names, "predict_probabilities", "probabilities_at"]
