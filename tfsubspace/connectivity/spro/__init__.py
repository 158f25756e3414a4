"""SPRO and ESPRO: low-loss simplexes grown from trained networks (paper 004).

A simplex (or a simplicial complex) of weights is a `SimplexModel`: a
`ts.SubspaceModel` whose m weight copies are the vertices and whose
`simplexes` lists which vertices form each simplex. A single simplex grown
from one trained model has `simplexes == ((0, 1, ..., m-1),)`; a complex
connecting M trained modes through c shared connecting vertices (004 §3.2,
§4.2) has vertices 0..M-1 = the modes (frozen) and M..M+c-1 = the connectors,
and one simplex per mode, `(i, M, ..., M+c-1)`: every simplex shares all the
connecting vertices.

Training a new vertex (004 Eq. 1, Eq. 3, A.2), one vertex at a time with every
other vertex frozen and the new one initialised at the mean of the others:

    loss = (1/S) Σ_s L(θ(α_s)) − λ_k · log V(complex)

with S points α_s drawn per step uniformly on the complex (a simplex picked
uniformly, then Dirichlet(1) on its vertices, 004 A.1); V is the sum of the
simplexes' Cayley–Menger volumes (`ts.volume`) and λ_k = λ / |log V(S̃_k)|, S̃_k
a randomly initialised complex of the same structure (004 Eq. A.3).

ESPRO (004 §5.2) ensembles points sampled from several simplexes, each grown
from an independently trained model; `ensemble` scores it next to the deep
ensemble of the base models, with batch norm recomputed at every point.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> from tfsubspace.connectivity import spro
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
>>> model = spro.grow(base, num_vertices=3, epochs_per_vertex=1, lmbda=0.1, samples=2,
...                   train_data=(x, y), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...                   seed=0)
>>> model.simplexes, model.frozen_points
(((0, 1, 2),), (0, 1))
"""


from tfsubspace.connectivity.spro.espro import ensemble
from tfsubspace.connectivity.spro.growth import grow, normalized_lambda, random_log_volume
from tfsubspace.connectivity.spro.modes import connect_modes
from tfsubspace.connectivity.spro.simplex_model import DEFAULT_JITTER, SimplexModel

__all__ = ["DEFAULT_JITTER", "SimplexModel", "connect_modes", "ensemble", "grow", "normalized_lambda", "random_log_volume"]
