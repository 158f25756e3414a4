"""Growing a low-loss simplex from one trained model, vertex by vertex (SPRO, paper 004 §3.1, §5.1).

Example: see `tfsubspace.connectivity.spro`.
"""

import numpy as np

from tfsubspace import volume
from tfsubspace.connectivity.spro.simplex_model import DEFAULT_JITTER, SimplexModel, check_simplexes
from tfsubspace.connectivity.spro.vertices import (
    check_int,
    check_non_negative,
    fresh_optimizer,
    mean_vertex,
    stock_template,
    stock_values,
    vertex_values,
)
from tfsubspace.convert import convert
from tfsubspace.model import find_subspace_layers
from tfsubspace.sampler import check_seed
from tfsubspace.shapes import Simplex

def random_log_volume(template, num_vertices, simplexes=None, include_normalization=True):
    """log V of a randomly initialised complex of this structure (004 Eq. A.3).

    Every vertex is drawn afresh with the layers' own initializers (as a new
    network would be), and the volume is exact (no jitter).

    Example:

    >>> import keras
    >>> from tfsubspace.connectivity import spro
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> bool(abs(spro.random_log_volume(base, 3)) > 0)
    True
    """
    num_vertices = check_int(num_vertices, "num_vertices", 2)
    simplexes = check_simplexes(simplexes, num_vertices)
    network = convert(stock_template(template), Simplex(num_vertices), beta=0.0, seed=0, init="independent").network
    layers = find_subspace_layers(network)
    return float(volume.subspace_log_volume(layers, simplexes, include_normalization=include_normalization))


def normalized_lambda(lmbda, random_log_volume):
    """λ_k = λ / |log V(S̃_k)| (004 Eq. A.3).

    The paper divides by log V(S̃_k); a random simplex of a small network can
    have V < 1, where that quotient would turn the volume reward into a
    penalty, so the magnitude is used.

    Example:

    >>> from tfsubspace.connectivity import spro
    >>> spro.normalized_lambda(1.0, -4.0)
    0.25
    """
    lmbda = check_non_negative(lmbda, "lmbda")
    if isinstance(random_log_volume, bool) or not isinstance(random_log_volume, (int, float, np.floating)):
        raise ValueError(f"`random_log_volume` must be a finite non-zero number, got {random_log_volume!r}.")
    if not np.isfinite(random_log_volume) or abs(random_log_volume) < 1e-6:
        raise ValueError(
            f"`random_log_volume` must be a finite number with |value| >= 1e-6, got {random_log_volume!r}; "
            "pass normalize_lambda=False to use `lmbda` as it is."
        )
    return lmbda / abs(float(random_log_volume))


def train_vertex(
    template, vertices, simplexes, *, lmbda, normalize_lambda, samples, jitter, seed, train_args, history
):
    """Builds the complex with `vertices` (the last one new), trains the last vertex."""
    k = len(vertices)
    network = convert(template, Simplex(k), beta=0.0, seed=seed, init="point").network
    layers = find_subspace_layers(network)
    for index, values in enumerate(vertices):
        for variable, value in zip((c[index] for layer in layers for c in layer.subspace_weights.values()), values):
            variable.assign(value)
    if normalize_lambda and lmbda > 0:
        reference = random_log_volume(template, k, simplexes)
        weight = normalized_lambda(lmbda, reference)
    else:
        reference, weight = None, lmbda
    model = SimplexModel(network, simplexes=simplexes, samples=samples, volume_weight=weight, jitter=jitter, seed=seed)
    model.freeze_points(range(k - 1))
    model.compile(
        optimizer=fresh_optimizer(train_args["optimizer"]), loss=train_args["loss"], metrics=train_args["metrics"]
    )
    fit_history = {}
    if train_args["epochs"] > 0:
        data = train_args["train_data"]
        # Arrays are shuffled by fit; a dataset is expected to be shuffled already.
        inputs = dict(x=data[0], y=data[1], batch_size=32) if isinstance(data, tuple) else dict(x=data, shuffle=False)
        fit_history = model.fit(
            **inputs,
            epochs=train_args["epochs"],
            steps_per_epoch=train_args["steps_per_epoch"],
            callbacks=train_args["callbacks"],
            verbose=train_args["verbose"],
        ).history
    history.append(
        {
            "vertex": k - 1,
            "random_log_volume": reference,
            "volume_weight": weight,
            "log_volume": float(model.log_volume(jitter=0.0)),
            "fit": fit_history,
        }
    )
    model.spro_history = history
    return model


def train_arguments(train_data, loss, optimizer, metrics, epochs, steps_per_epoch, callbacks, verbose):
    if loss is None:
        raise ValueError("`loss` must be given (a Keras loss, as for `compile`).")
    if isinstance(train_data, list):
        train_data = tuple(train_data)
    if isinstance(train_data, tuple) and len(train_data) != 2:
        raise ValueError(f"`train_data` must be a tf.data.Dataset or an (x, y) tuple, got {len(train_data)} arrays.")
    return {
        "train_data": train_data,
        "loss": loss,
        "optimizer": optimizer,
        "metrics": metrics,
        "epochs": check_int(epochs, "epochs_per_vertex", 0),
        "steps_per_epoch": steps_per_epoch,
        "callbacks": callbacks,
        "verbose": verbose,
    }


def grow(
    base_model,
    num_vertices,
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
    """Grows a low-loss simplex from one trained model, vertex by vertex (SPRO, 004 §5.1).

    Vertex 0 is `base_model`'s weights. For k = 2..num_vertices: a simplex of
    k vertices is built, the existing k−1 vertices are copied and frozen, the
    new vertex starts at their mean (004 A.2), and it is trained for
    `epochs_per_vertex` epochs on the mean over `samples` points per step of
    the loss minus λ_k · log V, λ_k = `normalized_lambda(lmbda,
    random_log_volume(...))` (or `lmbda` with `normalize_lambda=False`).

    Args:
        base_model: a trained Sequential/functional Keras model, or a
            single-simplex `SimplexModel` to grow further.
        num_vertices: vertices of the final simplex (>= 2, more than
            `base_model` has).
        epochs_per_vertex: epochs per new vertex (0 only initialises it).
        lmbda: λ of 004 Eq. A.3, >= 0.
        samples: points per step (004: 5).
        train_data: a tf.data.Dataset of (x, y) batches (shuffled already), or
            an (x, y) tuple of arrays (shuffled and batched by 32 by `fit`).
        loss, optimizer, metrics: as for `compile`; `optimizer` may be a
            name, an instance (re-created from its config for every vertex) or
            a zero-argument callable returning a new optimizer.
        seed: seed of the point sequence (vertex k uses seed + k).
        jitter: relative jitter of the volume reward (`ts.volume`).
        steps_per_epoch, callbacks, verbose: passed to `fit`.

    Returns:
        The trained `SimplexModel`; `spro_history` lists per vertex its
        random reference log-volume, λ_k, the exact final log-volume and the
        `fit` history.

    Example: see the module docstring.
    """
    num_vertices = check_int(num_vertices, "num_vertices", 2)
    lmbda = check_non_negative(lmbda, "lmbda")
    samples = check_int(samples, "samples", 1)
    seed = check_seed(seed)
    train_args = train_arguments(train_data, loss, optimizer, metrics, epochs_per_vertex, steps_per_epoch, callbacks, verbose)
    template = stock_template(base_model)
    if isinstance(base_model, SimplexModel):
        m = base_model.subspace_shape.num_points
        if base_model.simplexes != (tuple(range(m)),):
            raise ValueError("`base_model` must be a single-simplex SimplexModel (from `grow`), not a complex.")
        vertices = [vertex_values(base_model.subspace_layers, index) for index in range(m)]
        history = list(getattr(base_model, "spro_history", []))
    else:
        vertices = [stock_values(template)]
        history = []
    if num_vertices <= len(vertices):
        raise ValueError(f"`num_vertices` must be > {len(vertices)} (the vertices `base_model` has), got {num_vertices}.")
    model = None
    while len(vertices) < num_vertices:
        vertices = vertices + [mean_vertex(vertices)]
        k = len(vertices)
        model = train_vertex(
            template,
            vertices,
            (tuple(range(k)),),
            lmbda=lmbda,
            normalize_lambda=normalize_lambda,
            samples=samples,
            jitter=jitter,
            seed=(seed + k) % (2**31 - 1),
            train_args=train_args,
            history=history,
        )
        vertices = [vertex_values(model.subspace_layers, index) for index in range(k)]
    return model
