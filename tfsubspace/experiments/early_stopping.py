"""The "optimal early stopping" oracle of paper 001 §4.3 (Fig. 8, Fig. 12).

Standard training with config.eval.test_every_epoch=True scores the test set
after every epoch (`TestEveryEpoch`); the result then reports
`early_stopping_accuracy`, the best of those test accuracies, and the epoch
where it was reached (`summary`). This baseline looks at the test labels to
pick the epoch, which is how the paper defines it: an oracle upper bound of
early stopping, not a method one could deploy. The per-epoch scores use the
model as training leaves it at the end of each epoch, with the batch-norm
moving statistics as they are (no recompute: cheap enough to run every epoch),
so they can differ slightly from the final `test_accuracy`, which is scored
with batch norm recomputed.

Example:

>>> summary({"epoch_test_accuracy": [0.5, 0.8, 0.7], "epoch_test_nll": [1.0, 0.6, 0.9],
...          "epoch_test_ece": [0.1, 0.05, 0.2]})["early_stopping_epoch"]
2
"""

import keras
import numpy as np

#: Keys the callback adds to the epoch logs (and so to the history, TensorBoard and checkpoints).
KEYS = ("epoch_test_accuracy", "epoch_test_nll", "epoch_test_ece")


class TestEveryEpoch(keras.callbacks.Callback):
    """Adds the test accuracy, NLL and ECE of the model to the logs after every epoch.

    The scores go into the epoch's logs as `epoch_test_accuracy`,
    `epoch_test_nll` and `epoch_test_ece`, so callbacks after this one (the
    binary's checkpoints, history and TensorBoard) record them; a resumed
    run keeps the epochs before the resume through the checkpointed history.
    Batch norm is used as training left it (not recomputed).

    Args:
        test_data: a tf.data.Dataset of (x, y) batches.
    """

    __test__ = False  # not a pytest class

    def __init__(self, test_data):
        super().__init__()
        from tfsubspace.evaluation import reader

        self.test_data = reader.batches(test_data, "test_data")

    def on_epoch_end(self, epoch, logs=None):
        from tfsubspace import evaluation

        if logs is None:
            return
        scores = evaluation.scores(*evaluation.predict(self.model, self.test_data))
        for key, name in zip(KEYS, ("accuracy", "nll", "ece")):
            logs[key] = scores[name]


def summary(history):
    """The oracle early-stopping result from a history holding `TestEveryEpoch`'s keys.

    Returns {"early_stopping_accuracy", "early_stopping_epoch" (1-based, the
    first epoch reaching the best accuracy), "early_stopping_nll",
    "early_stopping_ece" (at that epoch)}.
    """
    accuracies = history.get(KEYS[0])
    if not accuracies:
        raise ValueError("the history holds no per-epoch test accuracy: train with config.eval.test_every_epoch=True.")
    best = int(np.argmax(accuracies))
    return {
        "early_stopping_accuracy": float(accuracies[best]),
        "early_stopping_epoch": best + 1,
        "early_stopping_nll": float(history[KEYS[1]][best]),
        "early_stopping_ece": float(history[KEYS[2]][best]),
    }


def table_row(result):
    """The report line of the oracle (labelled as peeking at the test set)."""
    return {
        "name": "optimal early stopping (oracle: best test accuracy over epochs, "
        f"epoch {result['early_stopping_epoch']})",
        "accuracy": result["early_stopping_accuracy"],
        "nll": result["early_stopping_nll"],
        "ece": result["early_stopping_ece"],
    }
