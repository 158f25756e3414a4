"""SWA-Gaussian (Maddox et al. 2019): a Gaussian fitted to SWA checkpoints.

The SWAG baseline of paper 001 §4.5 (Fig. 11: "6 samples from a gaussian fit
to the SWA checkpoints"; 000 §D.4: built from 6 saved SWA checkpoints). From
checkpoints θ_1..θ_N of the sampled weights (flattened into vectors):

    θ_SWA = (1/N) Σ θ_n,   Σ_diag = max((1/N) Σ θ_n² − θ_SWA², 0),
    D = [θ_{N−K+1} − θ_SWA, ..., θ_N − θ_SWA]   (the last K deviations),

and a sample is

    θ̃ = θ_SWA + (1/√2) Σ_diag^{1/2} ⊙ z1 + (1/√(2(K − 1))) D z2,
    z1 ~ N(0, I_d), z2 ~ N(0, I_K),

i.e. N(θ_SWA, ½ Σ_diag + ½ D Dᵀ/(K − 1)). The deviations are taken from the
final θ_SWA (as in the subspace paper's baseline; Maddox et al. use the
running mean at the time of each checkpoint). Only trainable weights are
sampled; batch-norm statistics are recomputed for every sample (000 §D.3),
since a sample's weights never saw training data.

Example:

>>> import numpy as np
>>> from tfsubspace.baselines import SWAG
>>> checkpoints = [[np.array([0.0, 1.0])], [np.array([2.0, 1.0])], [np.array([4.0, 1.0])]]
>>> swag = SWAG(checkpoints)
>>> swag.mean[0].tolist(), swag.variance[0].round(4).tolist()
([2.0, 1.0], [2.6667, 0.0])
>>> sample = swag.sample_weights(seed=0)
>>> sample[0].shape, float(sample[0][1])
((2,), 1.0)
"""

import numpy as np

from tfsubspace.baselines.checkpoints import _check_int, ensemble_checkpoints, model_with_weights
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS


class SWAG:
    """Diagonal plus low-rank Gaussian over weight checkpoints; samples, sample models, ensembles.

    Args:
        checkpoints: N ≥ 2 checkpoints, each a list of numpy arrays in
            `model.weights` order (e.g. `SWA.checkpoints`).
        trainable: which weights are sampled (a bool per array); default
            every floating-point array. The others are set to their mean
            (and batch norm's statistics are recomputed per sample anyway).
        max_rank: K, the number of last checkpoints in the deviation matrix
            D (2 ≤ K ≤ N); default N.

    Attributes:
        mean, variance: θ_SWA and Σ_diag as lists of arrays (float64).
        deviations: D as a [K, d] float64 array over the sampled weights.

    Example:

    >>> import numpy as np, keras, tensorflow as tf
    >>> from tfsubspace.baselines import SWA, SWAG
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    >>> model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.arange(32) % 3
    >>> swa = SWA(epochs=3, num_checkpoints=3, start_epoch=1)
    >>> _ = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[swa])
    >>> swag = SWAG.from_swa(swa)
    >>> swag.rank, swag.deviations.shape
    (3, (3, 23))
    >>> sampled = swag.sample_model(model, seed=0, batchnorm_data=x)
    >>> bool(np.allclose(sampled.layers[0].moving_mean, x.mean(0), atol=1e-4))
    True
    >>> test = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    >>> len(swag.ensemble(test, num_samples=2, model=model, batchnorm_data=x)["members"])
    2
    """

    def __init__(self, checkpoints, trainable=None, max_rank=None):
        checkpoints = [[np.asarray(w) for w in c] for c in checkpoints]
        if len(checkpoints) < 2:
            raise ValueError(f"`checkpoints` must hold at least 2 checkpoints for SWAG, got {len(checkpoints)}.")
        shapes = [w.shape for w in checkpoints[0]]
        if any([w.shape for w in c] != shapes for c in checkpoints):
            raise ValueError("`checkpoints` must all have the same arrays (same model): shapes differ.")
        if trainable is None:
            trainable = [np.issubdtype(w.dtype, np.floating) for w in checkpoints[0]]
        trainable = [bool(t) for t in trainable]
        if len(trainable) != len(shapes):
            raise ValueError(f"`trainable` must have one flag per weight array ({len(shapes)}), got {len(trainable)}.")
        if not any(trainable):
            raise ValueError("`trainable` selects no weights to sample.")
        _check_int(max_rank, "max_rank", 2, allow_none=True)
        rank = len(checkpoints) if max_rank is None else max_rank
        if rank > len(checkpoints):
            raise ValueError(f"`max_rank` must be <= the number of checkpoints ({len(checkpoints)}), got {max_rank}.")
        self.trainable = trainable
        self.rank = rank
        self.shapes = shapes
        self.dtypes = [w.dtype for w in checkpoints[0]]
        self.num_checkpoints = len(checkpoints)
        stacked = [np.stack([c[j] for c in checkpoints]).astype(np.float64) for j in range(len(shapes))]
        floating = [np.issubdtype(d, np.floating) for d in self.dtypes]
        self._fixed = [
            s.mean(axis=0) if is_float else np.asarray(checkpoints[-1][j])
            for j, (s, is_float) in enumerate(zip(stacked, floating))
        ]
        self.mean = [s.mean(axis=0) for s in stacked]
        # Σ_diag from the second moment, clipped at 0 against rounding (Maddox et al. §3).
        self.variance = [np.maximum(np.mean(np.square(s), axis=0) - np.square(m), 0.0) for s, m in zip(stacked, self.mean)]
        sampled = [j for j, t in enumerate(trainable) if t]
        self._sampled = sampled
        flat = np.concatenate([stacked[j].reshape(len(checkpoints), -1) for j in sampled], axis=1)
        flat_mean = np.concatenate([self.mean[j].reshape(-1) for j in sampled])
        self._flat_mean = flat_mean
        self._flat_std = np.sqrt(np.concatenate([self.variance[j].reshape(-1) for j in sampled]))
        self.deviations = flat[-rank:] - flat_mean

    @classmethod
    def from_swa(cls, swa, max_rank=None):
        """The SWAG of an `SWA` callback's checkpoints (its trainable weights)."""
        return cls(swa.checkpoints, trainable=swa.trainable, max_rank=max_rank)

    def sample_weights(self, seed=None, rng=None):
        """One sample θ̃ as a list of arrays in `model.weights` order.

        Args:
            seed: seed of a fresh `np.random.default_rng`; or
            rng: a `np.random.Generator` to draw from (for a series of samples).
        """
        if rng is None:
            rng = np.random.default_rng(seed)
        z1 = rng.standard_normal(self._flat_mean.shape)
        z2 = rng.standard_normal(self.rank)
        flat = (
            self._flat_mean
            + self._flat_std * z1 / np.sqrt(2.0)
            + (z2 @ self.deviations) / np.sqrt(2.0 * (self.rank - 1))
        )
        weights = [value.astype(dtype) for value, dtype in zip(self._fixed, self.dtypes)]
        offset = 0
        for j in self._sampled:
            size = int(np.prod(self.shapes[j]))
            weights[j] = flat[offset : offset + size].reshape(self.shapes[j]).astype(self.dtypes[j])
            offset += size
        return weights

    def sample_model(self, model, seed=None, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS, rng=None):
        """A clone of `model` with sampled weights, batch norm recomputed on `batchnorm_data`."""
        return model_with_weights(model, self.sample_weights(seed, rng), batchnorm_data, batchnorm_steps)

    def ensemble(self, test_data, num_samples, *, model, seed=0, batchnorm_data=None,
                 batchnorm_steps=DEFAULT_BATCHNORM_STEPS, **kwargs):
        """Scores the ensemble of `num_samples` SWAG samples (BN recomputed each) via `ts.evaluate.ensemble`.

        `model` is the architecture (keyword, as in every ensemble of the library).
        """
        _check_int(num_samples, "num_samples", 1)
        rng = np.random.default_rng(seed)
        samples = [self.sample_weights(rng=rng) for _ in range(num_samples)]
        return ensemble_checkpoints(
            samples, test_data, model=model, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps, **kwargs
        )
