"""Penalties on the subspace's endpoints.

`pair_cos2` is the diversity penalty of paper 001 Eq. 5 for one pair (j, k):
cos²(ω_j, ω_k) = ⟨ω_j, ω_k⟩² / (‖ω_j‖² ‖ω_k‖²), where each ω is the
concatenation of all subspace weights of non-normalization layers (batch/layer
norm parameters are excluded, paper 000 §D.3). It is computed in float32
whatever the dtype policy: the stacked copies are float32 under a mixed policy,
and a half-precision sum of squares would overflow (float16 tops at 65,504).

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> layer = ts.layers.SubspaceDense(3, num_points=2)
>>> _ = layer(np.ones((1, 2), "float32"))
>>> float(ts.regularizers.pair_cos2([layer], 0, 1)) <= 1.0
True
"""

import tensorflow as tf
from keras import ops

# Keeps the penalty finite if an endpoint is all zeros.
_EPSILON = 1e-12


def penalized_groups(layers):
    """The stacked copies (m, ...) that enter the penalty, weight by weight.

    Normalization parameters are left out wherever the normalization sits
    (its own layer, or inside an attention block or a custom layer).
    """
    return [stack for layer in layers for stack in layer.stacked_weights(include_normalization=False)]


def _pair_statistics(stack, j, k):
    """⟨ω_j, ω_k⟩, ‖ω_j‖², ‖ω_k‖² of one weight's stacked copies.

    One Gram matrix ω ωᵀ ([m, m], one pass over the weights; its gradient is
    one more) instead of slicing rows and multiplying element-wise.
    """
    flat = tf.reshape(tf.cast(stack, tf.float32), (stack.shape[0], -1))
    gram = tf.matmul(flat, flat, transpose_b=True)
    if stack.shape[0] == 2:
        # Both pairs of a line are (0, 1) up to order and cos² is symmetric.
        return gram[0, 1], gram[0, 0], gram[1, 1]
    # A gather, not gram[j, k]: XLA needs the begin of a strided slice at
    # compile time, so indexing by the sampled pair recompiled every step.
    j, k = tf.cast(j, tf.int32), tf.cast(k, tf.int32)
    picked = tf.gather_nd(gram, tf.stack([tf.stack([j, k]), tf.stack([j, j]), tf.stack([k, k])]))
    return picked[0], picked[1], picked[2]


def pair_cos2(layers, j, k):
    """cos² between endpoints j and k over all penalized weights of `layers`."""
    dot = norm_j = norm_k = 0.0
    for stack in penalized_groups(layers):
        group_dot, group_norm_j, group_norm_k = _pair_statistics(stack, j, k)
        dot = dot + group_dot
        norm_j = norm_j + group_norm_j
        norm_k = norm_k + group_norm_k
    return ops.square(dot) / (norm_j * norm_k + _EPSILON)
