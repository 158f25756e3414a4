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


def gram_matrix(stacks):
    """Σ over weights of ω ωᵀ: the [m, m] inner products of the copies, in float32.

    One matmul per weight (one pass over it; its gradient one more), summed
    before any pair is picked: every per-pair op then exists once, not once per
    weight, which keeps the train graph (and its trace) small.
    """
    total = None
    for stack in stacks:
        flat = tf.reshape(tf.cast(stack, tf.float32), (stack.shape[0], -1))
        gram = tf.matmul(flat, flat, transpose_b=True)
        total = gram if total is None else total + gram
    return total


def pair_statistics(gram, j, k):
    """⟨ω_j, ω_k⟩, ‖ω_j‖², ‖ω_k‖² read from a Gram matrix of the copies."""
    if gram.shape[0] == 2:
        # Both pairs of a line are (0, 1) up to order and cos² is symmetric.
        return gram[0, 1], gram[0, 0], gram[1, 1]
    # A gather, not gram[j, k]: XLA needs the begin of a strided slice at
    # compile time, so indexing by the sampled pair recompiled every step.
    j, k = tf.cast(j, tf.int32), tf.cast(k, tf.int32)
    picked = tf.gather_nd(gram, tf.stack([tf.stack([j, k]), tf.stack([j, j]), tf.stack([k, k])]))
    return picked[0], picked[1], picked[2]


def pair_cos2(layers, j, k):
    """cos² between endpoints j and k over all penalized weights of `layers`."""
    gram = gram_matrix(penalized_groups(layers))
    if gram is None:
        return tf.constant(0.0)
    dot, norm_j, norm_k = pair_statistics(gram, j, k)
    return ops.square(dot) / (norm_j * norm_k + _EPSILON)
