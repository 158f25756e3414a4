"""Connecting trained modes through shared vertices: a simplicial complex of low loss (paper 004 §3.2, §4.2).

Example: see `connect_modes`.
"""

from tfsubspace.connectivity.matching import match_layers
from tfsubspace.connectivity.spro.growth import train_arguments, train_vertex
from tfsubspace.connectivity.spro.simplex_model import DEFAULT_JITTER
from tfsubspace.connectivity.spro.vertices import (
    check_int,
    check_non_negative,
    mean_vertex,
    stock_template,
    stock_values,
    vertex_values,
)
from tfsubspace.sampler import check_seed

def connect_modes(
    models,
    num_connecting,
    epochs_per_vertex,
    lmbda,
    samples=5,
    *,
    train_data,
    loss,
    optimizer="sgd",
    metrics=None,
    seed=None,
    normalize_lambda=True,
    jitter=DEFAULT_JITTER,
    steps_per_epoch=None,
    callbacks=None,
    verbose=0,
):
    """A simplicial complex of low loss joining trained modes through shared vertices (004 §3.2, §4.2).

    Vertices 0..M−1 are the M `models` (frozen throughout); vertices
    M..M+c−1 are the c = `num_connecting` connecting points, trained one at a
    time. While connector j is trained the complex is
    {(i, M, ..., M+j) : i < M}: each mode forms a simplex with all the
    connectors so far (the complex C(w_0..w_{M−1}, θ_0..θ_j) of §3.2). Connector
    j starts at the mean of all previous vertices (004 A.2) and is trained on
    the mean over `samples` points of the complex per step (a simplex picked
    uniformly, then Dirichlet(1)) minus λ_j · log Σ_i V(simplex i), λ_j
    normalised by a random complex of the same structure.

    Args:
        models: >= 2 trained Keras models of one architecture, matched by
            structure as in `ts.connect` (names may differ; the first
            difference is named). Non-trainable state (batch-norm
            statistics) comes from models[0]; recompute it per point.
        num_connecting: c >= 1.
        Other arguments: as in `grow`.

    Returns:
        A `SimplexModel` with m = M + c vertices and `simplexes`
        ((0, M..M+c−1), (1, M..M+c−1), ...).

    Example:

    >>> import numpy as np, keras
    >>> from tfsubspace.connectivity import spro
    >>> make = lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
    >>> complex_ = spro.connect_modes([make(), make()], num_connecting=1, epochs_per_vertex=1, lmbda=0.1,
    ...                               samples=2, train_data=(x, y), seed=0,
    ...                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> complex_.simplexes, complex_.frozen_points
    (((0, 2), (1, 2)), (0, 1))
    """
    models = list(models) if isinstance(models, (list, tuple)) else None
    if not models or len(models) < 2:
        raise ValueError("`models` must be a list of at least 2 trained Keras models.")
    num_connecting = check_int(num_connecting, "num_connecting", 1)
    lmbda = check_non_negative(lmbda, "lmbda")
    samples = check_int(samples, "samples", 1)
    seed = check_seed(seed)
    train_args = train_arguments(train_data, loss, optimizer, metrics, epochs_per_vertex, steps_per_epoch, callbacks, verbose)
    template = stock_template(models[0])
    vertices = [stock_values(template)]
    for index, model in enumerate(models[1:], start=1):
        other = stock_template(model)
        match_layers(template, other, names=("models[0]", f"models[{index}]"))
        vertices.append(stock_values(other))
    num_modes = len(models)
    history = []
    complex_model = None
    for j in range(num_connecting):
        vertices = vertices + [mean_vertex(vertices)]
        k = len(vertices)
        connectors = tuple(range(num_modes, k))
        complex_model = train_vertex(
            template,
            vertices,
            tuple((mode,) + connectors for mode in range(num_modes)),
            lmbda=lmbda,
            normalize_lambda=normalize_lambda,
            samples=samples,
            jitter=jitter,
            seed=(seed + k) % (2**31 - 1),
            train_args=train_args,
            history=history,
        )
        vertices = [vertex_values(complex_model.subspace_layers, index) for index in range(k)]
    return complex_model
