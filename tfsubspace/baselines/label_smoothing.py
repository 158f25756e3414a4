"""Label smoothing for integer labels (Müller et al. 2019), the baseline of paper 001 §4.3 (Fig. 8).

The training binary uses it when config.train.label_smoothing > 0. It lives in
the package (not in the binary) so that a saved `model.keras` compiled with it
loads again after `import tfsubspace`.
"""

import keras


@keras.saving.register_keras_serializable(package="tfsubspace")
class SparseCategoricalCrossentropyWithLabelSmoothing(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards uniform (Müller et al. 2019; 001 §4.3).

    Keras 3's `SparseCategoricalCrossentropy` has no `label_smoothing`, so the
    integer labels are one-hot encoded and passed to
    `keras.losses.categorical_crossentropy(..., label_smoothing=ε)`: the target
    is (1 − ε)·onehot(y) + ε/K, i.e. the loss is
    (1 − ε)·(−log p_y) + (ε/K)·Σ_k (−log p_k).

    Example:

    >>> import numpy as np
    >>> from tfsubspace.baselines import SparseCategoricalCrossentropyWithLabelSmoothing
    >>> loss = SparseCategoricalCrossentropyWithLabelSmoothing(label_smoothing=0.2)
    >>> logits = np.log(np.array([[0.5, 0.25, 0.25]], "float32"))
    >>> expected = 0.8 * -np.log(0.5) + 0.2 / 3 * -np.log([0.5, 0.25, 0.25]).sum()
    >>> bool(np.isclose(float(loss(np.array([0]), logits)), expected))
    True
    """

    def __init__(
        self, label_smoothing=0.0, from_logits=True, reduction="sum_over_batch_size", name="smoothed_crossentropy"
    ):
        super().__init__(name=name, reduction=reduction)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0 <= label_smoothing < 1
        ):
            raise ValueError(f"`label_smoothing` must be a number in [0, 1), got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), keras.ops.shape(y_pred)[:-1])
        one_hot = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}
