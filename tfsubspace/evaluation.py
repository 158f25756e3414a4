"""Evaluating points of a subspace: predictions with batch norm recomputed at α.

The core pieces every report needs: test predictions at an α (with batch-norm
statistics recomputed at that α, paper 000 §D.3), accuracy and NLL from
probabilities, and ensembles as the mean of member probabilities.

Example:

>>> import numpy as np
>>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> accuracy(probabilities, np.array([0, 0]))
0.5
"""

import numpy as np
import tensorflow as tf

from tfsubspace.batchnorm import recompute_batchnorm


def labels_of(data):
    """All labels of a tf.data.Dataset of (x, y[, w]) batches, as numpy."""
    return np.concatenate([np.asarray(batch[1]) for batch in data])


def predict_probabilities(model, data, from_logits=True):
    """Softmax probabilities of `model` on the x of every batch of `data`."""
    inputs = data.map(lambda *batch: batch[0])
    outputs = model.predict(inputs, verbose=0)
    if from_logits:
        outputs = tf.nn.softmax(outputs.astype(np.float64), axis=-1).numpy()
    return outputs


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def nll(probabilities, labels):
    """Mean negative log-likelihood of the true labels."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def ensemble_probabilities(member_probabilities):
    """The ensemble's prediction: the mean of the members' probabilities."""
    return np.mean(np.stack(member_probabilities), axis=0)


def probabilities_at(model, alpha, test_data, batchnorm_data, batchnorm_steps=None, from_logits=True):
    """Test probabilities of a SubspaceModel at α, batch norm recomputed there."""
    recompute_batchnorm(model, batchnorm_data, alpha=alpha, steps=batchnorm_steps)
    return predict_probabilities(model, test_data, from_logits=from_logits)
