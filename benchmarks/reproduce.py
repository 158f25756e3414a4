r"""Reproduce the papers' claims on Fashion-MNIST through the training binary.

    .venv/bin/python benchmarks/reproduce.py --suite quick          # 1 seed, short budgets
    .venv/bin/python benchmarks/reproduce.py --suite full --jobs 2  # >= 3 seeds, every budget
    .venv/bin/python benchmarks/reproduce.py --suite full --only budget --max-minutes 60
    .venv/bin/python benchmarks/reproduce.py --aggregate-only       # rewrite RESULTS.md, no training

Every run is one call of `python -m tfsubspace.train` with a config from
configs/ plus overrides. A run is keyed by the SHA-256 of its config (seed
included): every section that the run's method reads (seed, method, dataset,
model, train, eval, and its own of subspace / baseline / connect / spro), so a
new SWA option does not invalidate a standard run. Its workdir is
runs/reproduce/<key>/ (checkpoints, so an interrupted run resumes) and, once
finished, its results.json (with the config it ran) is copied to
benchmarks/results/<key>.json, which is committed: the suite resumes after an
interruption, runs in pieces (`--only CLAIM`), and re-aggregates from the
committed files without retraining. Cached files are matched by the key of the
config stored inside them. A change of any value the method reads (a new
default included) gives a new key and a new run; a key added to the schema
later is filled into older stored configs from LEGACY_VALUES (the value that
reproduces what the code did before the key existed), or those runs are redone.

RESULTS.md (next to this file) is written from every cached result: per claim
the paper's statement, the measured mean ± std over seeds, and a verdict. How
noise is judged: the difference of two means d = mean(a) − mean(b) against its
standard error se = sqrt(sd_a²/n_a + sd_b²/n_b) over seeds; "holds" when d is
more than 2·se in the paper's direction, "does not hold" when more than 2·se the
other way, "within noise" otherwise, and "not judged (n < 3)" with fewer than
three seeds on either side (the sign is still shown).
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
WORK_DIR = os.path.join(ROOT, "runs", "reproduce")
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
# This checkout's tfsubspace (not whichever one the environment has installed).
sys.path.insert(0, ROOT)

# Budgets (epochs) and seeds of each suite. The quick suite is one seed at the
# shortest budgets (and reduced curve/SPRO settings); the full one follows the issue.
SUITES = {
    # Half of the training set (30,000 examples) keeps the quick suite within 30 minutes here.
    "quick": {"seeds": (0,), "budgets": (5,), "decay_budgets": (), "short": 5, "simplex_sizes": (3,), "k": 4,
              "overrides": {"dataset.train_subset": 30000}},
    "full": {"seeds": (0, 1, 2), "budgets": (10, 20, 40, 80), "decay_budgets": (20, 40), "short": 20,
             "simplex_sizes": (3, 4, 6), "k": 6, "overrides": {}},
}
PAPER_DECAY = 1e-4
STRONG_DECAY = 5e-4
# Evaluation that every run shares: no SavedModel (not needed here).
COMMON = {"eval.export": False}
# Keys added to the config schema after runs were cached: {dotted key: the value
# that reproduces the behaviour from before the key existed}.
LEGACY_VALUES = {"eval.random_ensemble": 0, "train.precision": "float32", "train.jit_compile": False,
                 "distribution": "none", "distribution_devices": None,
                 # eval.shift (dataset shift) came later: its defaults, off.
                 "eval.shift.enabled": False, "eval.shift.source": "fashion_mnist_c", "eval.shift.corruptions": [],
                 "eval.shift.severities": [1, 2, 3, 4, 5], "eval.shift.examples": 1000, "eval.shift.cache_dir": None,
                 "eval.shift.seed": 0, "eval.shift.best_severity": 3,
                 "dataset.image_size": None, "dataset.manual_dir": None}
# Subspace runs skip the binary's own standard baseline: the claims compare
# them with the standard runs of the same budget and seed, trained once.
NO_BASELINE = {"train.standard_baseline": False}


def run_key(config):
    """The cache key of a config dict: SHA-256 of the values its method reads (evaluation included).

    The sections are the workdir record's (`tfsubspace.workdir.method_reads`).
    """
    from tfsubspace.workdir import flatten, method_reads

    flat = {**LEGACY_VALUES, **flatten(config)}
    relevant = {key: value for key, value in flat.items() if method_reads(key, config.get("method"))}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- runs ------------------------------------------------------------------------------


class Run:
    """One binary run: a config file, overrides (dotted keys) and a label for the tables."""

    def __init__(self, config_file, overrides, label, extra=None):
        self.config_file = config_file
        self.overrides = {**COMMON, **(extra or {}), **overrides}
        self.label = label
        self.config = _load_config(config_file, self.overrides)
        self.key = run_key(self.config)

    @property
    def result_path(self):
        return os.path.join(RESULTS_DIR, f"{self.key}.json")

    def cached(self):
        return _load_all().get(self.key)

    def command(self, workdir):
        flags = [f"--config={os.path.join(ROOT, 'configs', self.config_file)}", f"--workdir={workdir}"]
        flags += [f"--config.{key}={_flag_value(value)}" for key, value in self.overrides.items()]
        return [sys.executable, "-m", "tfsubspace.train", *flags]


def _flag_value(value):
    return repr(value) if isinstance(value, (tuple, list)) else str(value)


def _load_config(config_file, overrides):
    spec = importlib.util.spec_from_file_location("_config", os.path.join(ROOT, "configs", config_file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config.to_dict()


def execute(run, threads, log):
    """Trains `run` (resuming its workdir) and caches its results.json; returns seconds."""
    workdir = os.path.join(WORK_DIR, run.key)
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    start = time.time()
    with open(os.path.join(workdir, "log.txt"), "a") as out:
        code = subprocess.call(run.command(workdir), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.time() - start
    if code != 0:
        log(f"FAILED ({code}) {run.label} [{run.key}]: see {workdir}/log.txt")
        return seconds
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    results["reproduce"] = {
        "label": run.label,
        "config_file": run.config_file,
        "overrides": run.overrides,
        "seconds": seconds,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    temporary = run.result_path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(results, f, indent=1, default=float)
    os.replace(temporary, run.result_path)
    log(f"done {run.label} [{run.key}] in {seconds / 60:.1f} min")
    return seconds


def _commit():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- claims ----------------------------------------------------------------------------


def _line(epochs, seed, decay=PAPER_DECAY, sampling="per_batch", extra=None):
    name = "layerwise line" if sampling == "per_layer" else "line"
    return Run("fashion_mnist_line.py", {"train.epochs": epochs, "seed": seed, "train.weight_decay": decay,
                                         "subspace.sampling": sampling, **NO_BASELINE},
               f"{name} {epochs} ep wd {decay:g} seed {seed}", extra)


def _standard(epochs, seed, decay=PAPER_DECAY, extra=None):
    return Run("fashion_mnist_standard.py", {"train.epochs": epochs, "seed": seed, "train.weight_decay": decay},
               f"standard {epochs} ep wd {decay:g} seed {seed}", extra)


def _simplex(epochs, seed, m, random_ensemble=0, extra=None):
    return Run("fashion_mnist_line.py", {"train.epochs": epochs, "seed": seed, "subspace.shape": "simplex",
                                         "subspace.num_vertices": m, "eval.random_ensemble": random_ensemble,
                                         **NO_BASELINE}, f"simplex {m} {epochs} ep seed {seed}", extra)


def _swa(epochs, seed, m, swag_samples=0, extra=None):
    # One checkpoint per epoch; the SWA phase takes the last m epochs (the authors' protocol
    # puts the first checkpoint at its start, after the annealed first phase, then m - 1 cycles).
    start = (epochs - m) / epochs
    return Run("fashion_mnist_swa.py", {"train.epochs": epochs, "seed": seed, "baseline.swa_num_checkpoints": m,
                                        "baseline.swa_start_fraction": start, "baseline.swag_samples": swag_samples},
               f"SWA {m} {epochs} ep seed {seed}", extra)


def claims(suite):
    s = SUITES[suite]
    seeds, short, k, x = s["seeds"], s["short"], s["k"], s["overrides"]
    budget_runs = []
    # Shortest budgets first, so an interrupted suite has the most complete picture.
    points = sorted([(e, PAPER_DECAY) for e in s["budgets"]] + [(e, STRONG_DECAY) for e in s["decay_budgets"]])
    for epochs, decay in points:
        for seed in seeds:
            budget_runs += [_standard(epochs, seed, decay, extra=x), _line(epochs, seed, decay, extra=x),
                            _line(epochs, seed, decay, "per_layer", extra=x)]
    first = s["budgets"][0]
    ensemble_runs = [r for seed in seeds for r in (_line(first, seed, extra=x), Run(
        "fashion_mnist_standard_ensemble.py", {"train.epochs": first, "seed": seed}, f"2 standard {first} ep seed {seed}",
        x))]
    simplex_runs = [r for seed in seeds for m in s["simplex_sizes"] for r in (
        _simplex(short, seed, m, extra=x), _swa(short, seed, m, extra=x))] + [
        _standard(short, seed, extra=x) for seed in seeds]
    # 001 §4.5: k points drawn from the k-vertex simplex as in training.
    fig11_runs = [r for seed in seeds for r in (
        _simplex(short, seed, k, random_ensemble=k, extra=x), _swa(short, seed, k, swag_samples=k, extra=x),
        Run("fashion_mnist_snapshot.py", {"train.epochs": short, "seed": seed, "baseline.num_snapshots": k},
            f"snapshots {k} {short} ep seed {seed}", x))]
    noise_runs = [Run("fashion_mnist_label_noise.py", {"train.epochs": short, "seed": seed},
                      f"label noise 20% {short} ep seed {seed}", x) for seed in seeds]
    connect_overrides = {"connect.points": 21, "connect.plane_grid": 5, "connect.plane_examples": 500}
    if suite == "quick":
        connect_overrides.update({"connect.epochs": 3})
    connect_runs = [Run("fashion_mnist_connect.py", {"train.epochs": first, "seed": seed, **connect_overrides},
                        f"curves {first} ep seed {seed}", x) for seed in seeds]
    fge_runs = [r for seed in seeds for r in (
        Run("fashion_mnist_fge.py", {"train.epochs": short, "seed": seed}, f"FGE {short} ep seed {seed}", x),
        _standard(short, seed, extra=x))]
    spro_overrides = {"train.epochs": first} if suite == "full" else {
        "train.epochs": first, "spro.num_models": 2, "spro.num_vertices": 2, "spro.epochs_per_vertex": 1}
    spro_runs = [Run("fashion_mnist_espro.py", {**spro_overrides, "seed": seed}, f"ESPRO seed {seed}", x)
                 for seed in seeds]
    return {
        "budget": budget_runs,
        "endpoint_ensemble": ensemble_runs,
        "simplex": simplex_runs,
        "simplex_ensembles": fig11_runs,
        "label_noise": noise_runs,
        "curves": connect_runs,
        "fge": fge_runs,
        "espro": spro_runs,
    }


# -- aggregation -----------------------------------------------------------------------


def mean_std(values):
    n = len(values)
    if not n:
        return None
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def verdict(a, b, higher_is_better=True):
    """Whether mean(a) beats mean(b) in the claimed direction, judged against 2 standard errors."""
    if a is None or b is None:
        return "not run"
    d = a["mean"] - b["mean"]
    if not higher_is_better:
        d = -d
    sign = "ahead" if d > 0 else "behind"
    if min(a["n"], b["n"]) < 3:
        return f"not judged (n < 3; {sign} by {abs(d):.4f})"
    se = (a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"]) ** 0.5
    if d > 2 * se:
        return "holds"
    if d < -2 * se:
        return "does not hold"
    return "within noise"


def _fmt(stat, scale=100.0, digits=2):
    if stat is None:
        return "—"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f} (n={stat['n']})"


def _load_all():
    """{key of the stored config: result} for every cached results file."""
    loaded = {}
    if os.path.isdir(RESULTS_DIR):
        for name in sorted(os.listdir(RESULTS_DIR)):
            if name.endswith(".json"):
                with open(os.path.join(RESULTS_DIR, name)) as f:
                    result = json.load(f)
                loaded[run_key(result["config"]) if "config" in result else name[:-5]] = result
    return loaded


def _collect(runs, cache, extract):
    values = []
    for run in runs:
        result = cache.get(run.key)
        if result is not None:
            try:
                value = extract(result)
            except (KeyError, TypeError, IndexError) as error:
                raise ValueError(f"cached result {run.key} ({run.label}) lacks {error}: its results.json schema "
                                 "differs from what this script reads; rerun it or update the reader") from None
            if value is not None:
                values.append(value)
    return mean_std(values)


def _standard_metric(metric):
    return lambda r: r["standard"][f"test_{metric}"]


def _subspace_metric(point, metric):
    return lambda r: r["subspace"][point][metric]


class Table:
    def __init__(self, title, statement, header):
        self.title, self.statement, self.header, self.rows, self.notes = title, statement, header, [], []

    def add(self, *cells):
        self.rows.append(cells)

    def markdown(self):
        lines = [f"### {self.title}", "", f"Paper: {self.statement}", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + self.notes + [""])


def aggregate(suite_name):
    cache = _load_all()
    tables, missing, verdicts = [], [], []
    for name in ("quick", "full"):
        for claim, runs in claims(name).items():
            missing += [(name, claim, run) for run in runs if run.key not in cache]
    report = {name: claims(name) for name in ("quick", "full")}

    def pick(name, claim, predicate):
        return [run for run in report[name][claim] if predicate(run)]

    for name in ("full", "quick"):
        s = SUITES[name]
        c = report[name]
        # Figs. 4/10: budget sweep.
        table = Table(f"[{name}] 001 Figs. 4/10: midpoint vs standard training along the budget",
                      "with longer training the line's midpoint matches or beats standard training in accuracy, "
                      "and is better calibrated (lower ECE) — Fig. 4, Fig. 10.",
                      ["epochs", "wd (l2)", "standard acc %", "line midpoint acc %", "layerwise midpoint acc %",
                       "standard ECE %", "line ECE %", "layerwise ECE %", "acc: line vs std", "ECE: line vs std",
                       "acc: layerwise vs std", "ECE: layerwise vs std"])
        budget_points = [(e, PAPER_DECAY) for e in s["budgets"]] + [(e, STRONG_DECAY) for e in s["decay_budgets"]]
        for epochs, decay in budget_points:
            def runs_of(label_start):
                return pick(name, "budget", lambda r: r.label.startswith(f"{label_start} {epochs} ep wd {decay:g} "))
            std_acc = _collect(runs_of("standard"), cache, _standard_metric("accuracy"))
            std_ece = _collect(runs_of("standard"), cache, _standard_metric("ece"))
            line_acc = _collect(runs_of("line"), cache, _subspace_metric("midpoint", "accuracy"))
            line_ece = _collect(runs_of("line"), cache, _subspace_metric("midpoint", "ece"))
            lw_acc = _collect(runs_of("layerwise line"), cache, _subspace_metric("midpoint", "accuracy"))
            lw_ece = _collect(runs_of("layerwise line"), cache, _subspace_metric("midpoint", "ece"))
            row = [epochs, f"{decay:g}", _fmt(std_acc), _fmt(line_acc), _fmt(lw_acc), _fmt(std_ece), _fmt(line_ece),
                   _fmt(lw_ece), verdict(line_acc, std_acc), verdict(line_ece, std_ece, higher_is_better=False),
                   verdict(lw_acc, std_acc), verdict(lw_ece, std_ece, higher_is_better=False)]
            if any(stat is not None for stat in (std_acc, line_acc, lw_acc)):
                table.add(*row)
                verdicts.append((name, f"Fig 4 midpoint acc ≥ standard, {epochs} ep, wd {decay:g}", row[8], row[10]))
                verdicts.append((name, f"Fig 10 midpoint ECE < standard, {epochs} ep, wd {decay:g}", row[9], row[11]))
        tables.append(table)

        # Fig. 6: endpoint ensemble vs two standard models.
        first = s["budgets"][0]
        table = Table(f"[{name}] 001 Fig. 6: endpoints of one line vs two independent models ({first} epochs)",
                      "the ensemble of a line's two endpoints approaches the ensemble of two independently "
                      "trained models (at the cost of one training run).",
                      ["method", "accuracy %", "NLL", "verdict (acc, line ensemble vs 2 standard)"])
        line_runs = pick(name, "endpoint_ensemble", lambda r: r.label.startswith("line"))
        pair_runs = pick(name, "endpoint_ensemble", lambda r: r.label.startswith("2 standard"))
        a = _collect(line_runs, cache, _subspace_metric("endpoint_ensemble", "accuracy"))
        b = _collect(pair_runs, cache, lambda r: r["standard_ensemble"]["accuracy"])
        table.add("line endpoints (α=0, 1) ensemble", _fmt(a),
                  _fmt(_collect(line_runs, cache, _subspace_metric("endpoint_ensemble", "nll")), 1, 4), verdict(a, b))
        table.add("ensemble of 2 standard models", _fmt(b),
                  _fmt(_collect(pair_runs, cache, lambda r: r["standard_ensemble"]["nll"]), 1, 4), "")
        table.notes.append("The paper's claim is that the line ensemble comes close (it costs one run, not two): "
                           "'holds' here would mean it is better; 'within noise' is consistent with the claim.")
        tables.append(table)
        verdicts.append((name, "Fig 6 line endpoint ensemble vs 2 standard models", verdict(a, b), ""))

        # Fig. 7: simplex midpoints vs standard vs SWA.
        short = s["short"]
        table = Table(f"[{name}] 001 Fig. 7: simplex midpoints vs standard training and SWA ({short} epochs)",
                      "the midpoint of a simplex with more vertices is more accurate, above standard training and "
                      "comparable to or above SWA of m checkpoints.",
                      ["m", "simplex midpoint acc %", "SWA (m checkpoints) acc %", "standard acc %",
                       "vs standard", "vs SWA"])
        std = _collect(pick(name, "simplex", lambda r: r.label.startswith("standard")), cache, _standard_metric("accuracy"))
        for m in s["simplex_sizes"]:
            mid = _collect(pick(name, "simplex", lambda r: r.label.startswith(f"simplex {m} ")), cache,
                           _subspace_metric("midpoint", "accuracy"))
            swa = _collect(pick(name, "simplex", lambda r: r.label.startswith(f"SWA {m} ")), cache,
                           lambda r: r["swa"]["average"]["accuracy"])
            table.add(m, _fmt(mid), _fmt(swa), _fmt(std), verdict(mid, std), verdict(mid, swa))
            verdicts.append((name, f"Fig 7 simplex({m}) midpoint vs standard / vs SWA", verdict(mid, std), verdict(mid, swa)))
        tables.append(table)

        # Fig. 11: ensembles from a simplex vs snapshots, SWA checkpoints, SWAG.
        k = s["k"]
        table = Table(f"[{name}] 001 Fig. 11: ensembles of {k} from one run ({short} epochs)",
                      f"an ensemble of points from a {k}-vertex simplex beats a {k}-snapshot ensemble, "
                      f"{k} SWA checkpoints and {k} SWAG samples at the same training cost.",
                      ["method", "accuracy %", "NLL", "simplex vs it (acc)"])
        simplex_runs = pick(name, "simplex_ensembles", lambda r: r.label.startswith(f"simplex {k} "))
        swa_runs = pick(name, "simplex_ensembles", lambda r: r.label.startswith(f"SWA {k} "))
        snap_runs = pick(name, "simplex_ensembles", lambda r: r.label.startswith("snapshots"))
        simplex = _collect(simplex_runs, cache, lambda r: r["subspace"]["random_ensemble"]["ensemble"]["accuracy"])
        entries = [
            (f"{k} random points of a {k}-vertex simplex", simplex_runs,
             lambda r: r["subspace"]["random_ensemble"]["ensemble"]),
            (f"its {k} vertices", simplex_runs, lambda r: r["subspace"]["endpoint_ensemble"]),
            (f"{k}-snapshot ensemble", snap_runs, lambda r: r["snapshot"]["ensemble"]["ensemble"]),
            (f"{k} SWA checkpoints", swa_runs, lambda r: r["swa"]["checkpoint_ensemble"]["ensemble"]),
            (f"{k} SWAG samples", swa_runs, lambda r: r["swa"].get("swag_ensemble", {}).get("ensemble")),
        ]
        for label, runs, get in entries:
            acc = _collect(runs, cache, lambda r, get=get: (get(r) or {}).get("accuracy"))
            nll = _collect(runs, cache, lambda r, get=get: (get(r) or {}).get("nll"))
            judged = "" if runs is simplex_runs else verdict(simplex, acc)
            table.add(label, _fmt(acc), _fmt(nll, 1, 4), judged)
            if judged:
                verdicts.append((name, f"Fig 11 simplex ensemble vs {label}", judged, ""))
        table.notes.append(f"The verdicts judge the paper's 'Simplex (Random Ensemble)': {k} points drawn from the "
                           "simplex as in training (one α for the whole network, batch norm recomputed at each); "
                           "the vertex ensemble is shown for comparison.")
        tables.append(table)

        # Fig. 12: label noise.
        table = Table(f"[{name}] 001 Fig. 12: 20% label noise ({short} epochs)",
                      "with label noise the line's midpoint beats standard training and even optimal early stopping.",
                      ["method", "accuracy %", "midpoint vs it"])
        runs = report[name]["label_noise"]
        mid = _collect(runs, cache, _subspace_metric("midpoint", "accuracy"))
        std = _collect(runs, cache, _standard_metric("accuracy"))
        oracle = _collect(runs, cache, lambda r: r["standard"]["early_stopping_accuracy"])
        table.add("line midpoint", _fmt(mid), "")
        table.add("standard training", _fmt(std), verdict(mid, std))
        table.add("optimal early stopping (oracle)", _fmt(oracle), verdict(mid, oracle))
        tables.append(table)
        verdicts.append((name, "Fig 12 label noise: midpoint vs standard / vs early stopping",
                         verdict(mid, std), verdict(mid, oracle)))

        # 003 Table 2.
        table = Table(f"[{name}] 003 Table 2: curves between two trained models",
                      "Bezier and polygonal-chain curves keep test error near the endpoints' along the whole curve, "
                      "while the segment between them rises far above it.",
                      ["curve", "test error Max %", "test error Int %", "train loss Int", "length ratio",
                       "Max below segment's"])
        runs = report[name]["curves"]

        def curve_stat(curve, metric, which, runs=runs):
            def get(r):
                curves = r["connect"]["curves"]
                if curve == "segment":
                    evaluation = next(iter(curves.values()))["evaluation"]
                    return evaluation["summary"]["segment"][metric][which]
                return curves[curve]["evaluation"]["summary"]["curve"][metric][which]
            return _collect(runs, cache, get)

        def ratio(curve, runs=runs):
            def get(r):
                curves = r["connect"]["curves"]
                if curve == "segment":
                    return 1.0
                return curves[curve]["evaluation"]["summary"]["curve"]["length_ratio"]
            return _collect(runs, cache, get)

        segment_max = curve_stat("segment", "test_error", "max")
        for curve in ("segment", "bezier", "polychain"):
            worst = curve_stat(curve, "test_error", "max")
            judged = "" if curve == "segment" else verdict(worst, segment_max, higher_is_better=False)
            table.add(curve, _fmt(worst), _fmt(curve_stat(curve, "test_error", "int")),
                      _fmt(curve_stat(curve, "train_loss", "int"), 1, 3), _fmt(ratio(curve), 1, 3), judged)
            if judged:
                verdicts.append((name, f"003 Table 2: {curve} Max test error below the segment's", judged, ""))
        tables.append(table)

        # 003 §5: FGE.
        table = Table(f"[{name}] 003 §5: FGE vs one model at the same budget ({short} epochs)",
                      "Fast Geometric Ensembling beats a single model trained with the same budget.",
                      ["method", "accuracy %", "NLL", "FGE vs it"])
        fge_runs = pick(name, "fge", lambda r: r.label.startswith("FGE"))
        std_runs = pick(name, "fge", lambda r: r.label.startswith("standard"))
        fge = _collect(fge_runs, cache, lambda r: r["fge"]["ensemble"]["ensemble"]["accuracy"])
        std = _collect(std_runs, cache, _standard_metric("accuracy"))
        table.add("FGE ensemble", _fmt(fge), _fmt(_collect(fge_runs, cache, lambda r: r["fge"]["ensemble"]["ensemble"]["nll"]), 1, 4), "")
        table.add("standard training", _fmt(std), _fmt(_collect(std_runs, cache, _standard_metric("nll")), 1, 4), verdict(fge, std))
        tables.append(table)
        verdicts.append((name, "003 §5 FGE vs a single model", verdict(fge, std), ""))

        # 004: ESPRO.
        table = Table(f"[{name}] 004 §5: ESPRO vs the deep ensemble of its base models",
                      "ESPRO (points from a simplex around each base model) beats the deep ensemble of the same "
                      "base models in accuracy and NLL.",
                      ["method", "accuracy %", "NLL", "ESPRO vs it (acc)", "ESPRO vs it (NLL)"])
        runs = report[name]["espro"]
        acc = _collect(runs, cache, lambda r: r["spro"]["espro"]["accuracy"])
        deep = _collect(runs, cache, lambda r: r["spro"]["deep_ensemble"]["accuracy"])
        nll = _collect(runs, cache, lambda r: r["spro"]["espro"]["nll"])
        deep_nll = _collect(runs, cache, lambda r: r["spro"]["deep_ensemble"]["nll"])
        table.add("ESPRO", _fmt(acc), _fmt(nll, 1, 4), "", "")
        table.add("deep ensemble", _fmt(deep), _fmt(deep_nll, 1, 4), verdict(acc, deep),
                  verdict(nll, deep_nll, higher_is_better=False))
        tables.append(table)
        verdicts.append((name, "004 ESPRO vs deep ensemble (acc / NLL)", verdict(acc, deep),
                         verdict(nll, deep_nll, higher_is_better=False)))
    return tables, verdicts, missing, cache


def write_results_md(tables, verdicts, missing, cache, runtime_note):
    seconds_by_claim = {}
    for suite in ("quick", "full"):
        for claim, runs in claims(suite).items():
            total = sum(cache[r.key]["reproduce"]["seconds"] for r in runs if r.key in cache)
            seconds_by_claim[(suite, claim)] = total
    lines = [
        "# Reproducing the papers' claims on Fashion-MNIST",
        "",
        "Written by `benchmarks/reproduce.py` (do not edit by hand). Small CNN with batch norm "
        "(configs/fashion_mnist_*.py), real Fashion-MNIST offline, the papers' recipe: SGD momentum 0.9, "
        f"weight decay {PAPER_DECAY:g} in the papers' (PyTorch, `l2`) form unless a row says otherwise, cosine "
        "schedule with 1 warm-up epoch, batch 128; batch norm recomputed for every evaluated model.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, no GPU (shared with "
        "other jobs while it ran: absolute times are noisy). " + runtime_note,
        "",
        _provenance(cache),
        "",
        "Noise: mean ± std over seeds; a difference counts when it exceeds 2 standard errors of the difference "
        "of means (see the docstring of reproduce.py); fewer than 3 seeds is 'not judged' with its sign shown.",
        "",
        "## Verdicts",
        "",
        "| suite | claim | verdict | second verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {c} | {v1} | {v2} |" for s, c, v1, v2 in verdicts if not v1.startswith("not run")]
    lines += ["", "## Measured", ""]
    lines += [t.markdown() for t in tables if t.rows and any(_has_numbers(row) for row in t.rows)]
    lines += ["## Runtime per part (training + evaluation, summed over its cached runs)", "",
              "| suite | claim | runs done | minutes |", "|---|---|---|---|"]
    for suite in ("quick", "full"):
        for claim, runs in claims(suite).items():
            done = sum(r.key in cache for r in runs)
            lines.append(f"| {suite} | {claim} | {done}/{len(runs)} | {seconds_by_claim[(suite, claim)] / 60:.1f} |")
    lines += ["", "Runs shared by several claims are counted in each.", "", "## Not run yet", ""]
    pending = {}
    for suite, claim, run in missing:
        pending.setdefault((suite, claim), []).append(run)
    if not pending:
        lines.append("Everything has been run.")
    for (suite, claim), runs in pending.items():
        lines.append(f"- {suite} / {claim}: {len(runs)} runs (e.g. {runs[0].label}); "
                     f"`.venv/bin/python benchmarks/reproduce.py --suite {suite} --only {claim}`")
    lines.append("")
    with open(RESULTS_MD, "w") as f:
        f.write("\n".join(lines))


def _provenance(cache):
    """When and at which commits the cached runs finished, and each suite's wall-clock span."""
    import datetime as _dt

    def span(results):
        stamps = [(r["reproduce"]["finished"], r["reproduce"]["seconds"]) for r in results
                  if "finished" in r.get("reproduce", {})]
        if not stamps:
            return None
        ends = [_dt.datetime.fromisoformat(f) for f, _ in stamps]
        starts = [end - _dt.timedelta(seconds=sec) for end, (_, sec) in zip(ends, stamps)]
        return min(starts), max(ends)

    parts = []
    for suite in ("quick", "full"):
        keys = {r.key for runs in claims(suite).values() for r in runs}
        results = [cache[k] for k in sorted(keys) if k in cache]
        window = span(results)
        if window:
            commits = sorted({r["reproduce"].get("commit", "?") for r in results})
            parts.append(f"{suite} suite: {len(results)}/{len(keys)} runs, started {window[0]:%Y-%m-%d %H:%M} and "
                         f"finished {window[1]:%Y-%m-%d %H:%M} UTC (span "
                         f"{(window[1] - window[0]).total_seconds() / 60:.0f} min, in one go or in pieces), "
                         f"commits {', '.join(commits)}")
    return "Runs: " + "; ".join(parts) + "." if parts else "Runs: none yet."


def _has_numbers(row):
    return any(isinstance(c, str) and "(n=" in c for c in row)


def plot_budget(cache, path):
    """Accuracy and ECE against epochs (mean ± std band): standard vs line vs layerwise line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = claims("full")["budget"]  # the quick suite trains on half the data: not the same curve
    series = {}
    for run in runs:
        result = cache.get(run.key)
        if result is None:
            continue
        decay = run.config["train"]["weight_decay"]
        epochs = run.config["train"]["epochs"]
        method = run.label.split(" ")[0] if not run.label.startswith("layerwise") else "layerwise line"
        if method == "standard":
            values = (result["standard"]["test_accuracy"], result["standard"]["test_ece"])
        else:
            values = (result["subspace"]["midpoint"]["accuracy"], result["subspace"]["midpoint"]["ece"])
        series.setdefault((method, decay), {}).setdefault(epochs, []).append(values)
    if not series:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {"standard": "tab:blue", "line": "tab:orange", "layerwise line": "tab:green"}
    for (method, decay), by_epochs in sorted(series.items()):
        epochs = sorted(by_epochs)
        style = "-" if decay == PAPER_DECAY else "--"
        for axis, index, scale in ((axes[0], 0, 100), (axes[1], 1, 100)):
            stats = [mean_std([v[index] for v in by_epochs[e]]) for e in epochs]
            mean = [s["mean"] * scale for s in stats]
            std = [s["std"] * scale for s in stats]
            axis.plot(epochs, mean, style, marker="o", color=colours[method],
                      label=f"{method}{' midpoint' if method != 'standard' else ''}, wd {decay:g}")
            axis.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                              color=colours[method], alpha=0.15)
    budgets = sorted({e for by_epochs in series.values() for e in by_epochs})
    for axis, name in ((axes[0], "test accuracy (%)"), (axes[1], "test ECE (%)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(budgets, [str(e) for e in budgets])
        axis.minorticks_off()
        axis.set_xlabel("training epochs")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("Budget sweep on Fashion-MNIST (small CNN): mean ± std over seeds")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("--only", action="append", default=None, help="claim(s) to run; default: all")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets cores / jobs threads)")
    parser.add_argument("--max-minutes", type=float, default=None, help="start no new run after this long")
    parser.add_argument("--aggregate-only", action="store_true", help="rewrite RESULTS.md from the cache only")
    parser.add_argument("--list", action="store_true", help="print the runs and whether they are cached")
    args = parser.parse_args(argv)

    suite_claims = claims(args.suite)
    unknown = sorted(set(args.only or ()) - set(suite_claims))
    if unknown:
        parser.error(f"--only must name claims of {sorted(suite_claims)}, got {unknown}")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    selected = args.only or list(suite_claims)
    cache = _load_all()
    pending, seen = [], set()
    for claim in selected:
        for run in suite_claims[claim]:
            if run.key not in seen and run.key not in cache:
                seen.add(run.key)
                pending.append(run)
    if args.list:
        for claim in selected:
            for run in suite_claims[claim]:
                print(f"{claim:18s} {run.key} {'cached' if run.key in cache else 'pending'}  {run.label}")
        return 0

    start = time.time()

    def log(message):
        print(f"[{time.time() - start:7.0f} s] {message}", flush=True)

    if not args.aggregate_only and pending:
        log(f"{len(pending)} runs to do ({args.suite}: {', '.join(selected)})")
        threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = []
            for run in pending:
                futures.append(pool.submit(_guarded, run, threads, log, start, args.max_minutes))
            for future in futures:
                future.result()
    tables, verdicts, missing, cache = aggregate(args.suite)
    minutes = (time.time() - start) / 60
    note = (f"Last invocation: `{' '.join(['benchmarks/reproduce.py', *(argv if argv is not None else sys.argv[1:])])}`, "
            f"{minutes:.1f} min, finished {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"commit {_commit()}.")
    write_results_md(tables, verdicts, missing, cache, note)
    png = plot_budget(cache, os.path.join(HERE, "budget_sweep.png"))
    log(f"wrote {RESULTS_MD}" + (f" and {png}" if png else ""))
    return 0


def _guarded(run, threads, log, start, max_minutes):
    if max_minutes is not None and (time.time() - start) / 60 > max_minutes:
        log(f"skipped (time) {run.label}")
        return 0.0
    log(f"start {run.label} [{run.key}]")
    return execute(run, threads, log)


if __name__ == "__main__":
    sys.exit(main())
