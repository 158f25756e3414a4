"""ESPRO: the ensemble of points sampled from several simplexes (paper 004 §5.2, Eq. 5).

Example: see `ensemble`.
"""

import numpy as np

from tfsubspace.connectivity.spro.simplex_model import SimplexModel
from tfsubspace.connectivity.spro.vertices import check_int
from tfsubspace.evaluation.ensemble import member_probabilities, score_members
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS
from tfsubspace.evaluation.results import Table
from tfsubspace.sampler import check_seed

def ensemble(
    simplexes,
    samples_per_simplex,
    test_data,
    *,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    seed=0,
    from_logits=None,
    num_bins=15,
    temperature=1.0,
    verbose="auto",
):
    """ESPRO (004 §5.2, Eq. 5) next to the deep ensemble of the base models.

    Draws `samples_per_simplex` points uniformly from each `SimplexModel`
    (simplex i with seed `seed + i`), predicts at each with batch norm
    recomputed there on `batchnorm_data` (004 §5.4, A.2), and averages the
    probabilities of all points of all simplexes. The deep ensemble averages
    vertex 0 of each simplex (its base model), batch norm recomputed there too.

    Args:
        simplexes: a non-empty list of `SimplexModel`s (e.g. from `grow`).
        samples_per_simplex: points per simplex, >= 1 (004 uses 25).
        test_data: (x, y) batches (see `tfsubspace.evaluation.reader`).
        batchnorm_data: training batches for the recompute; required when a
            model has batch norm.
        batchnorm_steps, from_logits, num_bins, temperature, verbose: as in
            `ts.evaluate.sweep`.

    Returns:
        A `Table` with rows {"ensemble", "accuracy", "nll", "ece", "brier",
        "disagreement"} for "espro", "deep_ensemble" and each simplex, and
        the parts "espro", "deep_ensemble", "simplexes" (scores of each
        simplex's own ensemble) and "points" (the points of each simplex).
        Each model is left at its original α.

    Example:

    >>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
    >>> from tfsubspace.connectivity import spro
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> simplex = spro.SimplexModel(ts.convert(base, ts.Simplex(3), seed=0).network, seed=0)
    >>> data = tf.data.Dataset.from_tensor_slices((np.random.rand(16, 4).astype("float32"),
    ...                                            np.arange(16) % 3)).batch(8)
    >>> result = spro.ensemble([simplex], 2, data)
    >>> [row["ensemble"] for row in result], sorted(result["espro"])
    (['espro', 'deep_ensemble', 'simplex 0'], ['accuracy', 'brier', 'disagreement', 'ece', 'nll'])
    """
    simplexes = list(simplexes) if isinstance(simplexes, (list, tuple)) else None
    if not simplexes or not all(isinstance(s, SimplexModel) for s in simplexes):
        raise ValueError("`simplexes` must be a non-empty list of SimplexModel (from grow or connect_modes).")
    samples_per_simplex = check_int(samples_per_simplex, "samples_per_simplex", 1)
    seed = check_seed(seed)
    names, all_members, base_members, per_simplex, points, labels = [], [], [], [], [], None
    for index, model in enumerate(simplexes):
        drawn = model.sample_points(samples_per_simplex, seed=(seed + index) % (2**31 - 1))
        # The drawn points and vertex 0 (the base model), batch norm recomputed at each.
        _, probabilities, labels = member_probabilities(
            list(drawn) + [model.vertex_point(0)], test_data, model=model, batchnorm_data=batchnorm_data,
            batchnorm_steps=batchnorm_steps, from_logits=from_logits, temperature=temperature, verbose=verbose,
            title=f"ESPRO simplex {index + 1} of {len(simplexes)}",
        )
        members = probabilities[:-1]
        per_simplex.append(score_members(drawn, members, labels, num_bins)["ensemble"])
        names += [f"simplex {index}: {list(np.round(alpha, 3))}" for alpha in drawn]
        all_members.extend(members)
        base_members.append(probabilities[-1])
        points.append(drawn)
    espro = score_members(names, all_members, labels, num_bins)["ensemble"]
    deep = score_members(range(len(base_members)), base_members, labels, num_bins)["ensemble"]
    rows = [{"ensemble": "espro", **espro}, {"ensemble": "deep_ensemble", **deep}]
    rows += [{"ensemble": f"simplex {index}", **scored} for index, scored in enumerate(per_simplex)]
    return Table(rows, espro=espro, deep_ensemble=deep, simplexes=per_simplex, points=points)
