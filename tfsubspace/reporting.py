"""Reports of one experiment: results.json, a Markdown table and PNG plots.

`report(results, directory, title=...)` takes the results dict that the
training binary builds (and that `results.json` holds) and writes:

- `results.json`: the dict itself;
- `results.md`: test metrics along the subspace (with the pair ensembles of
  α and 1 − α), the midpoint, the endpoint ensemble and the references;
- `accuracy.png`: accuracy along α and the accuracy of the ensemble of α and
  1 − α, with horizontal references for standard training and a standard
  ensemble of two when the results hold them (paper 001 Fig. 4–6 style). For a
  simplex the x axis lists the evaluated points (center, vertices, random);
- `geometry.png`: L2 distance and cos² between the subspace's endpoints over
  the epochs (paper 001 Fig. 3, 000 Fig. 15–16), from the training history;
- `shift.png` (results with a `"shift"` entry, `ts.evaluate.shift` as
  `tfsubspace/experiments/shift.py` stores it): test accuracy against
  corruption severity (0 = clean), one line per model or point α (the mean over
  corruptions; references such as the standard model dashed), with light
  per-corruption lines for a single model.

The results dict has the keys `"subspace"` (with `"shape"`, `"along_subspace"`
rows as in `ts.evaluate.sweep`, `"midpoint"`, `"endpoint_ensemble"` and
`"history"`), optionally `"standard"` (`"test_accuracy"`, `"test_nll"`,
`"test_ece"`) and `"standard_ensemble"` (`"accuracy"`, `"nll"`, `"ece"`,
`"size"`). Any other method adds its lines to the table with a
`"table_rows"` list of {"name", "accuracy", "nll", "ece"} in its entry (e.g.
`results["swa"]["table_rows"]`), and may list extra Markdown sections (e.g.
a curve table) in `"markdown"`; everything is kept in results.json.

Example:

>>> import os, tempfile
>>> from tfsubspace.reporting import report
>>> rows = [{"alpha": a, "accuracy": 0.8 + 0.1 * a * (1 - a), "nll": 0.5, "ece": 0.02,
...          "pair_accuracy": 0.85, "pair_nll": 0.45, "pair_ece": 0.01, "pair_tv": 0.1 * abs(1 - 2 * a)}
...         for a in (0.0, 0.5, 1.0)]
>>> scores = {"accuracy": 0.825, "nll": 0.5, "ece": 0.02}
>>> results = {"subspace": {"shape": "Line()", "along_subspace": rows, "midpoint": scores,
...                         "endpoint_ensemble": scores,
...                         "history": {"l2_0_1": [1.0, 2.0], "cos2_0_1": [0.5, 0.1]}},
...            "standard": {"test_accuracy": 0.83, "test_nll": 0.4, "test_ece": 0.01}}
>>> directory = tempfile.mkdtemp()
>>> sorted(os.path.basename(p) for p in report(results, directory, title="demo").values())
['accuracy.png', 'geometry.png', 'results.json', 'results.md']
"""

import json
import os
import re

import numpy as np

from tfsubspace import files

PAIR_KEYS = ("pair_accuracy", "pair_nll", "pair_tv")
_PAIR_NAME = re.compile(r"^(l2|cos2)_(\d+)_(\d+)$")


def _alpha_label(alpha):
    if isinstance(alpha, (list, tuple)):
        return "[" + ", ".join(f"{a:.2f}" for a in alpha) + "]"
    return f"{alpha:.2f}"


def _simplex_point_names(rows):
    """'center', 'vertex i' or 'random j' for each row of a simplex sweep."""
    names, random_index = [], 0
    for row in rows:
        alpha = np.asarray(row["alpha"], dtype=np.float64)
        if np.allclose(alpha, alpha.mean()):
            names.append("center")
        elif np.isclose(alpha.max(), 1.0):
            names.append(f"vertex {int(alpha.argmax())}")
        else:
            names.append(f"random {random_index}")
            random_index += 1
    return names


def markdown_table(results):
    """The test metrics of `results` as a Markdown table (string)."""
    lines = []
    subspace = results.get("subspace")
    standard = results.get("standard")
    standard_ensemble = results.get("standard_ensemble")
    pairs = bool(subspace) and all(key in subspace["along_subspace"][0] for key in PAIR_KEYS)
    header = ["point", "accuracy", "nll", "ece"]
    if pairs:
        header += ["ensemble with 1-α: accuracy", "nll", "tv"]
    if subspace:
        lines.append(f"Subspace {subspace['shape']}: test metrics along it (BN recomputed at each α)")
        lines.append("")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))

    def line(name, accuracy, nll, ece, extra=()):
        cells = [name, f"{accuracy:.4f}", f"{nll:.4f}", f"{ece:.4f}", *extra]
        cells += [""] * (len(header) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")

    if subspace:
        for row in subspace["along_subspace"]:
            extra = [f"{row[key]:.4f}" for key in PAIR_KEYS] if pairs else ()
            line(f"α = {_alpha_label(row['alpha'])}", row["accuracy"], row["nll"], row["ece"], extra)
        for name, key in (("midpoint", "midpoint"), ("endpoint ensemble", "endpoint_ensemble")):
            s = subspace[key]
            line(name, s["accuracy"], s["nll"], s["ece"])
        if "random_ensemble" in subspace:
            s = subspace["random_ensemble"]
            line(f"ensemble of {len(s['points'])} random points", **{k: s["ensemble"][k] for k in ("accuracy", "nll", "ece")})
    if standard:
        line("standard training", standard["test_accuracy"], standard["test_nll"], standard["test_ece"])
    if standard_ensemble:
        size = standard_ensemble.get("size", 2)
        s = standard_ensemble
        line(f"standard ensemble of {size}", s["accuracy"], s["nll"], s["ece"])
    sections = []
    for entry in results.values():
        if isinstance(entry, dict):
            for row in entry.get("table_rows", ()):
                line(row["name"], row["accuracy"], row["nll"], row["ece"])
            sections.extend(entry.get("markdown", ()))
    return "\n\n".join(["\n".join(lines), *sections])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on servers
    import matplotlib.pyplot as plt

    return plt


def _references(axis, results):
    standard = results.get("standard")
    if standard:
        axis.axhline(standard["test_accuracy"], color="black", linestyle="--", label="standard training")
    standard_ensemble = results.get("standard_ensemble")
    if standard_ensemble:
        axis.axhline(
            standard_ensemble["accuracy"],
            color="gray",
            linestyle=":",
            label=f"standard ensemble of {standard_ensemble.get('size', 2)}",
        )


def plot_accuracy(results, path, title):
    """Accuracy (and pair-ensemble accuracy) along the subspace, as a PNG."""
    plt = _pyplot()
    subspace = results["subspace"]
    rows = subspace["along_subspace"]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    curve = not isinstance(rows[0]["alpha"], (list, tuple))
    if curve:
        alphas = [row["alpha"] for row in rows]
        axis.plot(alphas, [row["accuracy"] for row in rows], "o-", label="model at α")
        if "pair_accuracy" in rows[0]:
            axis.plot(alphas, [row["pair_accuracy"] for row in rows], "s-", label="ensemble of α and 1−α")
        axis.set_xlabel("α")
    else:
        names = _simplex_point_names(rows)
        positions = np.arange(len(rows))
        axis.plot(positions, [row["accuracy"] for row in rows], "o", label="model at the point")
        axis.set_xticks(positions, names, rotation=45, ha="right")
        axis.set_xlabel("point of the simplex")
    axis.axhline(
        subspace["endpoint_ensemble"]["accuracy"], color="tab:green", linestyle="-.", label="endpoint ensemble"
    )
    _references(axis, results)
    axis.set_ylabel("test accuracy")
    axis.set_title(f"{title}: {subspace['shape']}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_geometry(history, path, title):
    """L2 distance and cos² between endpoints per epoch (every pair, and the mean), as a PNG."""
    plt = _pyplot()
    pairs = sorted(
        {(int(m.group(2)), int(m.group(3))) for m in map(_PAIR_NAME.match, history) if m},
    )
    if not pairs:
        raise ValueError(
            "`history` has no per-pair geometry (keys like 'l2_0_1', 'cos2_0_1'); "
            "train with ts.callbacks.SubspaceGeometry()."
        )
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for j, k in pairs:
        epochs = np.arange(1, len(history[f"l2_{j}_{k}"]) + 1)
        left.plot(epochs, history[f"l2_{j}_{k}"], "o-", label=f"ω{j}, ω{k}")
        right.plot(epochs, history[f"cos2_{j}_{k}"], "o-", label=f"ω{j}, ω{k}")
    if len(pairs) > 1 and "l2_mean" in history:
        epochs = np.arange(1, len(history["l2_mean"]) + 1)
        left.plot(epochs, history["l2_mean"], "k--", label="mean over pairs")
        right.plot(epochs, history["cos2_mean"], "k--", label="mean over pairs")
    left.set_ylabel("L2 distance ‖ωj − ωk‖")
    right.set_ylabel("cos²(ωj, ωk)")
    if all(v > 0 for j, k in pairs for v in history[f"cos2_{j}_{k}"]):
        right.set_yscale("log")  # cos² falls by orders of magnitude (000 Fig. 16)
    for axis in (left, right):
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(f"{title}: endpoint geometry during training (normalization layers excluded)")
    return _save(figure, path)


def plot_shift(shift, path, title):
    """Accuracy against severity (0 = clean): mean over corruptions per model/point, as a PNG."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    single = isinstance(shift["clean"], dict)
    cleans = [dict(shift["clean"], alpha=None)] if single else shift["clean"]
    for clean in cleans:
        means = [row for row in shift["by_severity"] if single or row["alpha"] == clean["alpha"]]
        label = shift.get("model", "model") if single else f"α = {_alpha_label(clean['alpha'])}"
        axis.plot([0] + [row["severity"] for row in means], [clean["accuracy"]] + [row["accuracy"] for row in means],
                  "o-", label=label)
    for name, reference in shift.get("references", {}).items():  # e.g. the standard model of a subspace run
        axis.plot([0] + [row["severity"] for row in reference["by_severity"]],
                  [reference["clean"]["accuracy"]] + [row["accuracy"] for row in reference["by_severity"]],
                  "k--", marker="s", label=name)
    if single:  # per-corruption lines: cheap for one model, clutter for a grid of points
        for corruption in dict.fromkeys(row["corruption"] for row in shift["rows"]):
            rows = [row for row in shift["rows"] if row["corruption"] == corruption]
            axis.plot([0] + [row["severity"] for row in rows],
                      [shift["clean"]["accuracy"]] + [row["accuracy"] for row in rows], color="gray", alpha=0.25, lw=1)
    axis.set_xticks(range(0, 6), ["clean", "1", "2", "3", "4", "5"])
    axis.set_xlabel("corruption severity")
    axis.set_ylabel(f"test accuracy (mean over {len(shift['corruptions'])} corruptions)")
    axis.set_title(f"{title}: dataset shift ({shift['source']})")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return _save(figure, path)


def report(results, directory, title="tfsubspace"):
    """Writes results.json, results.md and the plots into `directory`.

    Args:
        results: the results dict (see the module docstring).
        directory: where to write; created if missing.
        title: shown in the plot titles, e.g. the config's name.

    Returns:
        {"json": path, "markdown": path, "accuracy_plot": path, "geometry_plot": path,
        "shift_plot": path} (plots only for results with a subspace; the
        geometry plot only when the history holds it; the shift plot only
        with a "shift" entry).
    """
    if not isinstance(results, dict) or not any(
        isinstance(entry, dict) and ({"along_subspace", "test_accuracy", "table_rows"} & set(entry))
        for entry in results.values()
    ):
        raise ValueError(
            "`results` must be a dict with at least one method's entry ('subspace', 'standard', "
            "or one with 'table_rows')."
        )
    os.makedirs(directory, exist_ok=True)
    paths = {"json": os.path.join(directory, "results.json"), "markdown": os.path.join(directory, "results.md")}
    # Fresh temporaries renamed into place: an interrupted write never leaves a
    # truncated file, and a symlink planted at `results.json.tmp` is never followed.
    files.write_atomically(paths["json"], json.dumps(results, indent=2, default=str))
    files.write_atomically(paths["markdown"], f"# {title}\n\n" + markdown_table(results) + "\n")
    subspace = results.get("subspace")
    if subspace:
        paths["accuracy_plot"] = plot_accuracy(results, os.path.join(directory, "accuracy.png"), title)
        if any(_PAIR_NAME.match(key) for key in subspace.get("history", {})):
            paths["geometry_plot"] = plot_geometry(subspace["history"], os.path.join(directory, "geometry.png"), title)
    if results.get("shift"):
        paths["shift_plot"] = plot_shift(results["shift"], os.path.join(directory, "shift.png"), title)
    return paths


def _save(figure, path):
    """Writes `figure` to `path` through a fresh temporary file, closes it; returns `path`."""
    figure.tight_layout()
    with files.replacing(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=120)
    _pyplot().close(figure)
    return path
