"""The experiment configuration schema: every key, its default, its check.

Configs in configs/ start from `base_config()` and override fields; the training
binary loads them with `lock_config=True`, so a misspelt key fails at once.
`validate` turns wrong values into one-line errors naming the key and the
allowed values before any data is loaded.

Example:

>>> config = base_config()
>>> config.method, config.subspace.shape
('subspace', 'line')
>>> validate(config) is config
True
"""

import ml_collections

from tfsubspace import checks, distribution
from tfsubspace.experiments import METHODS

DATASETS = ("fashion_mnist", "mnist", "cifar10", "cifar100", "imagenet2012", "tiny_imagenet")
STREAMED_DATASETS = ("imagenet2012", "tiny_imagenet")
MODELS = ("mlp", "small_cnn", "cresnet20", "resnet18", "resnet50", "wide_resnet50_2")
DROPOUT_MODELS = ("mlp", "small_cnn")
SHAPES = ("line", "bezier", "polychain", "simplex")
SAMPLINGS = ("per_batch", "per_layer")
INITS = ("independent", "point")
AUGMENTATIONS = (None, "crop", "flip_crop", "resized_crop_flip")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
SWA_PROTOCOLS = ("authors", "paper")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# config.eval.shift.source -> the config.dataset.name its corrupted sets belong to.
SHIFT_SOURCES = {"fashion_mnist_c": "fashion_mnist", "cifar10_corrupted": "cifar10",
                 "imagenet2012_corrupted": "imagenet2012"}


def base_config():
    """Defaults shared by every experiment (paper 001 §4 recipe, scaled down)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.method = "subspace"
    # tf.distribute strategy of the binary (tfsubspace/distribution.py): "none",
    # "mirrored" (every visible GPU, or distribution_devices logical CPUs) or
    # "multi_worker" (MultiWorkerMirroredStrategy, cluster from TF_CONFIG).
    config.distribution = "none"
    config.distribution_devices = ml_collections.FieldReference(None, field_type=int)

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "fashion_mnist"
    config.dataset.data_dir = ml_collections.FieldReference(None, field_type=str)
    config.dataset.augment = ml_collections.FieldReference(None, field_type=str)
    config.dataset.pad_to = ml_collections.FieldReference(None, field_type=int)
    config.dataset.validation_size = 0
    config.dataset.train_subset = ml_collections.FieldReference(None, field_type=int)
    # Label noise (001 §4.3): this fraction of training labels replaced by random
    # labels, chosen by label_noise_seed (not config.seed), so the noisy set is
    # the same for every method and ensemble member. Validation/test untouched.
    config.dataset.label_noise = 0.0
    config.dataset.label_noise_seed = 0
    # Streamed datasets (imagenet2012, tiny_imagenet) only: the side of the
    # square images the model sees (None: 224 / 64), and the folder holding
    # ImageNet's ILSVRC2012_img_{train,val}.tar for tensorflow_datasets to
    # prepare once (data_dir is then its tfds directory; for tiny_imagenet,
    # the tiny-imagenet-200 folder).
    config.dataset.image_size = ml_collections.FieldReference(None, field_type=int)
    config.dataset.manual_dir = ml_collections.FieldReference(None, field_type=str)

    config.model = ml_collections.ConfigDict()
    config.model.name = "small_cnn"
    config.model.kwargs = ml_collections.ConfigDict()
    # Dropout after hidden layers (mlp, small_cnn), for the paper's dropout baseline (000 §F).
    config.model.dropout = 0.0

    config.subspace = ml_collections.ConfigDict()
    config.subspace.shape = "line"
    config.subspace.num_bends = 1
    config.subspace.num_vertices = 3
    config.subspace.beta = 1.0
    config.subspace.sampling = "per_batch"
    config.subspace.init = "independent"

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 10
    config.train.batch_size = 128
    config.train.learning_rate = 0.1
    config.train.momentum = 0.9
    # The papers' weight decay: 1e-4 for the CIFAR-style nets (001 §4), "l2" =
    # PyTorch SGD's wd·w in the gradient before momentum (ts.optimizers.SGD);
    # "decoupled" = Keras' SGD(weight_decay), about 10x weaker at momentum 0.9.
    config.train.weight_decay = 1e-4
    config.train.weight_decay_mode = "l2"
    config.train.warmup_epochs = 1
    # Also train a standard model with the same recipe, for comparison.
    config.train.standard_baseline = False
    # Label smoothing of the cross-entropy (001 §4.3 baseline); 0 = none.
    config.train.label_smoothing = 0.0
    # Keras dtype policy of every model the run builds: "mixed_float16" or
    # "mixed_bfloat16" keep the weights (subspace copies, θ) in float32 and run
    # the layer math in half precision; float16 trains with loss scaling.
    config.train.precision = "float32"
    # XLA for the train step (model.compile(jit_compile=...)); off by default:
    # 2-3x slower on this CPU (BUILD_NOTES.md).
    config.train.jit_compile = False

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 1000
    config.eval.alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    # Batches of eval.batch_size training examples per batch-norm recompute
    # (None: a full pass). 3 x 1000 examples: more than the 2,560 that
    # benchmarks/sweep_cost.py found within 0.2 accuracy points of a full pass.
    config.eval.batchnorm_steps = ml_collections.FieldReference(3, field_type=int)
    config.eval.export = True
    # Test accuracy after every epoch of standard training, for the "optimal
    # early stopping" oracle (001 §4.3: best test accuracy over the epochs).
    config.eval.test_every_epoch = False
    # method="subspace": also score the ensemble of this many points drawn as in
    # training (001 §4.5, Fig. 11: "Simplex (Random Ensemble)"); 0 = none.
    config.eval.random_ensemble = 0
    # Dataset shift after training (ts.evaluate.shift; tfsubspace/experiments/shift.py):
    # accuracy/NLL/ECE per corruption and severity, (b - a)/a vs the clean test set,
    # and for a subspace the best α per corruption at best_severity (000 §G: 3).
    config.eval.shift = ml_collections.ConfigDict()
    config.eval.shift.enabled = False
    config.eval.shift.source = "fashion_mnist_c"
    # () = all: the 18 that change a grey image for fashion_mnist_c (no saturate), all 19 for cifar10_corrupted.
    config.eval.shift.corruptions = ()
    config.eval.shift.severities = (1, 2, 3, 4, 5)
    # First N test images per set (None: the whole test set).
    config.eval.shift.examples = ml_collections.FieldReference(1000, field_type=int)
    # Fashion-MNIST-C cache (None: ~/.cache/tfsubspace/corrupted); tfds sources read dataset.data_dir.
    config.eval.shift.cache_dir = ml_collections.FieldReference(None, field_type=str)
    config.eval.shift.seed = 0
    config.eval.shift.best_severity = ml_collections.FieldReference(3, field_type=int)

    # Baselines (issue 4; tfsubspace/experiments/baselines.py).
    config.baseline = ml_collections.ConfigDict()
    # method="standard_ensemble": members seeded config.seed + i.
    config.baseline.ensemble_size = 2
    # method="swa" (000 §D.4): SWA LR from swa_start_fraction of training, one
    # checkpoint per late-phase stretch; SWAG samples from those checkpoints.
    config.baseline.swa_start_fraction = 0.75
    config.baseline.swa_lr = 0.05
    config.baseline.swa_lr_schedule = "cyclic"
    config.baseline.swa_num_checkpoints = 3
    # "authors": the first phase anneals to 0 at the SWA start, where the first
    # checkpoint is taken, then m - 1 cycles (the reference code); "paper": the
    # schedule is cut at the start and m cycles follow (000 §D.4's text).
    config.baseline.swa_protocol = "authors"
    config.baseline.swag_samples = 6
    # method="snapshot" (Huang et al. 2017): cosine restarts, one snapshot per cycle.
    config.baseline.num_snapshots = 5
    # method="fge" (003 §5, A.9): the standard schedule until fge_start_fraction,
    # then triangular cycles of fge_cycle_epochs between fge_alpha_1 and fge_alpha_2.
    config.baseline.fge_start_fraction = 0.8
    config.baseline.fge_alpha_1 = 0.05
    config.baseline.fge_alpha_2 = 5e-4
    config.baseline.fge_cycle_epochs = 0.5

    # method="connect" (003 §3-§5; tfsubspace/experiments/connectivity.py): two
    # standard models (seeds seed, seed + 1) joined by a curve per shape.
    config.connect = ml_collections.ConfigDict()
    config.connect.shapes = ("bezier", "polychain")
    config.connect.num_bends = 1
    config.connect.epochs = 10
    # Curve training LR (cosine to 0, no warm-up); None: train.learning_rate.
    config.connect.learning_rate = ml_collections.FieldReference(None, field_type=float)
    # Curve metrics (003 A.4 / Table 2): grid of t, train metrics on the first
    # train_examples training examples (None: all), ensembles of ensemble_points t.
    config.connect.points = 61
    config.connect.train_examples = ml_collections.FieldReference(None, field_type=int)
    config.connect.ensemble_points = 5
    # Plane through (w_a, w_b, first curve's bend): grid², each on plane_examples
    # test examples with batch norm recomputed on plane_batchnorm_steps batches.
    config.connect.plane_grid = 21
    config.connect.plane_examples = 2000
    config.connect.plane_batchnorm_steps = 1
    # FGE from endpoint 0 (003 §5, A.9); 0 cycles: none.
    config.connect.fge_cycles = 0
    config.connect.fge_cycle_epochs = 2
    config.connect.fge_alpha_1 = 0.05
    config.connect.fge_alpha_2 = 5e-4

    # method="spro" (004 §5): num_models standard models (seeds seed + i), each
    # grown to num_vertices vertices; ESPRO vs the deep ensemble of the bases.
    config.spro = ml_collections.ConfigDict()
    config.spro.num_models = 3
    config.spro.num_vertices = 3
    config.spro.epochs_per_vertex = 2
    # λ of 004 Eq. 1/A.3, normalised per vertex by |log V| of a random simplex.
    config.spro.lmbda = 1e-2
    config.spro.samples = 5
    # Per-vertex LR (cosine to 0); 004 A.3 uses 1/5 of the base LR (0.01 vs 0.05).
    config.spro.learning_rate = 0.02
    config.spro.ensemble_samples = 10
    return config


def _fail(key, message):
    raise ValueError(f"config.{key} {message}")


def _lookup(config, key):
    for part in key.split("."):
        config = config[part]
    return config


def _positive_int(config, key, allow_none=False, minimum=1):
    checks.integer(_lookup(config, key), f"config.{key}", minimum=minimum, allow_none=allow_none)


def _one_of(value, key, allowed):
    checks.one_of(value, f"config.{key}", allowed)


def _non_negative_number(value, key):
    checks.number(value, f"config.{key}", minimum=0)


def _fraction(value, key, closed):
    checks.fraction(value, f"config.{key}", closed=closed)


def _model_kwargs(config):
    """config.model.kwargs must be arguments of the zoo model (the binary sets the others)."""
    import inspect

    from tfsubspace.models import MODELS as ZOO

    allowed = [p for p in inspect.signature(ZOO[config.model.name]).parameters
               if p not in ("input_shape", "num_classes", "dropout", "synchronized")]
    for key in config.model.kwargs:
        if key not in allowed:
            _fail(f"model.kwargs.{key}", f"is not an argument of {config.model.name}; allowed: {allowed}.")


def _streamed_dataset(config):
    """dataset.image_size / manual_dir / "resized_crop_flip" only where they apply."""
    dataset = config.dataset
    _positive_int(config, "dataset.image_size", allow_none=True, minimum=8)
    streamed = dataset.name in STREAMED_DATASETS
    for key in ("image_size", "manual_dir"):
        if dataset[key] is not None and not streamed:
            _fail(f"dataset.{key}", f"is only for dataset.name in {STREAMED_DATASETS}, got {dataset.name!r}.")
    if dataset.manual_dir is not None and dataset.name != "imagenet2012":
        _fail("dataset.manual_dir", f"is only for dataset.name 'imagenet2012', got {dataset.name!r}.")
    if dataset.augment == "resized_crop_flip" and not streamed:
        _fail("dataset.augment", f"'resized_crop_flip' is only for dataset.name in {STREAMED_DATASETS}, "
              f"got {dataset.name!r}; allowed: {AUGMENTATIONS[:3]}.")
    if streamed and dataset.pad_to is not None:
        _fail("dataset.pad_to", f"does not apply to {dataset.name!r} (use dataset.image_size), got {dataset.pad_to}.")
    if dataset.name == "imagenet2012" and dataset.label_noise:
        _fail("dataset.label_noise", f"is not supported for 'imagenet2012', got {dataset.label_noise!r}.")


def _seeds(config):
    """config.seed and every seed derived from it (seed + i) must be valid library seeds."""
    offsets = {"standard_ensemble": config.baseline.ensemble_size, "connect": 2, "spro": config.spro.num_models}
    top = config.seed + offsets.get(config.method, 1) - 1
    if top > checks.SEED_MAX:
        _fail("seed", f"must be <= {checks.SEED_MAX - top + config.seed} for method {config.method!r}, "
              f"which also uses seeds up to config.seed + {top - config.seed}; got {config.seed}.")


def _validate_baseline(config):
    """config.baseline: value checks, then what the configured method needs of the run's length."""
    baseline, epochs = config.baseline, config.train.epochs
    for key in ("ensemble_size", "swa_num_checkpoints", "num_snapshots"):
        _positive_int(config, f"baseline.{key}")
    _positive_int(config, "baseline.swag_samples", minimum=0)
    _one_of(baseline.swa_lr_schedule, "baseline.swa_lr_schedule", ("cyclic", "constant"))
    for key in ("swa_lr", "fge_alpha_1", "fge_cycle_epochs"):
        _non_negative_number(baseline[key], f"baseline.{key}")
        if not baseline[key] > 0:
            _fail(f"baseline.{key}", f"must be > 0, got {baseline[key]!r}.")
    _non_negative_number(baseline.fge_alpha_2, "baseline.fge_alpha_2")
    if not baseline.fge_alpha_2 < baseline.fge_alpha_1:
        _fail(
            "baseline.fge_alpha_2",
            f"must be < baseline.fge_alpha_1 ({baseline.fge_alpha_1}), got {baseline.fge_alpha_2!r}.",
        )
    for key in ("swa_start_fraction", "fge_start_fraction"):
        _fraction(baseline[key], f"baseline.{key}", closed=False)
    _one_of(baseline.swa_protocol, "baseline.swa_protocol", SWA_PROTOCOLS)
    if config.method == "swa":
        start = int(baseline.swa_start_fraction * epochs)
        authors = baseline.swa_protocol == "authors"
        cycles = baseline.swa_num_checkpoints - (1 if authors else 0)
        if cycles > epochs - start:
            extra = " + 1 for the checkpoint at the start (swa_protocol='authors')" if authors else ""
            _fail("baseline.swa_num_checkpoints", f"must be <= train.epochs - SWA start epoch = {epochs - start}"
                  f"{extra}, one checkpoint per epoch at most, got {baseline.swa_num_checkpoints}.")
        if authors and start < 1:
            # The first phase (its warm-up clamped like any schedule's) must have an epoch to anneal in.
            _fail("baseline.swa_start_fraction", f"must leave at least one epoch before the SWA start with "
                  f"swa_protocol='authors' (train.epochs={epochs}), got SWA start epoch {start}.")
        if baseline.swag_samples and baseline.swa_num_checkpoints < 2:
            _fail("baseline.swa_num_checkpoints", "must be >= 2 for SWAG (or set baseline.swag_samples=0), got 1.")
    if config.method == "fge":
        start = round(baseline.fge_start_fraction * epochs)
        if not 1 <= start < epochs:
            _fail("baseline.fge_start_fraction", f"must leave at least one pre-training epoch and one FGE epoch of "
                  f"train.epochs={epochs}, got {baseline.fge_start_fraction!r} (FGE from epoch {start}).")


CONNECT_SHAPES = ("bezier", "polychain")


def _validate_connectivity(config):
    """config.connect and config.spro."""
    connect, spro = config.connect, config.spro
    shapes = connect.shapes
    if (
        isinstance(shapes, str)
        or not isinstance(shapes, (tuple, list))
        or not shapes
        or any(s not in CONNECT_SHAPES for s in shapes)
        or len(set(shapes)) != len(shapes)
    ):
        _fail("connect.shapes", f"must be a non-empty tuple of distinct names from {CONNECT_SHAPES}, got {shapes!r}.")
    for key in ("num_bends", "epochs", "ensemble_points", "plane_examples", "plane_batchnorm_steps", "fge_cycle_epochs"):
        _positive_int(config, f"connect.{key}")
    _positive_int(config, "connect.points", minimum=2)
    _positive_int(config, "connect.plane_grid", minimum=2)
    _positive_int(config, "connect.train_examples", allow_none=True)
    _positive_int(config, "connect.fge_cycles", minimum=0)
    if connect.learning_rate is not None:
        _non_negative_number(connect.learning_rate, "connect.learning_rate")
        if not connect.learning_rate > 0:
            _fail("connect.learning_rate", f"must be > 0 or None, got {connect.learning_rate!r}.")
    _non_negative_number(connect.fge_alpha_1, "connect.fge_alpha_1")
    _non_negative_number(connect.fge_alpha_2, "connect.fge_alpha_2")
    if not connect.fge_alpha_2 < connect.fge_alpha_1:
        _fail("connect.fge_alpha_2", f"must be < connect.fge_alpha_1 ({connect.fge_alpha_1}), got {connect.fge_alpha_2!r}.")
    _positive_int(config, "spro.num_models")
    _positive_int(config, "spro.num_vertices", minimum=2)
    _positive_int(config, "spro.epochs_per_vertex")
    _positive_int(config, "spro.samples")
    _positive_int(config, "spro.ensemble_samples")
    _non_negative_number(spro.lmbda, "spro.lmbda")
    _non_negative_number(spro.learning_rate, "spro.learning_rate")
    if not spro.learning_rate > 0:
        _fail("spro.learning_rate", f"must be > 0, got {spro.learning_rate!r}.")


def _validate_shift(config):
    """config.eval.shift: the same checks as tfsubspace.data.corrupted's arguments."""
    from tfsubspace.data import corrupted

    shift = config.eval.shift
    checks.boolean(shift.enabled, "config.eval.shift.enabled")
    _one_of(shift.source, "eval.shift.source", tuple(SHIFT_SOURCES))
    corrupted.check_corruptions(shift.corruptions, "config.eval.shift.corruptions")
    severities = corrupted.check_severities(shift.severities, "config.eval.shift.severities")
    _positive_int(config, "eval.shift.examples", allow_none=True)
    checks.seed(shift.seed, "config.eval.shift.seed")
    best = checks.integer(shift.best_severity, "config.eval.shift.best_severity", minimum=1, maximum=5, allow_none=True)
    if best is not None and best not in severities:
        _fail("eval.shift.best_severity", f"must be one of config.eval.shift.severities {severities} or None "
              f"(mean over severities), got {best}.")
    if shift.enabled and shift.source == "imagenet2012_corrupted":
        _fail("eval.shift.source", "'imagenet2012_corrupted' needs an ImageNet model, which the binary does not train; "
              "score one with ts.evaluate.shift(model, tfsubspace.data.imagenet2012_corrupted(...), clean_data=...).")
    if shift.enabled and SHIFT_SOURCES[shift.source] != config.dataset.name:
        _fail("eval.shift.source", f"{shift.source!r} holds corrupted {SHIFT_SOURCES[shift.source]} images; "
              f"it needs dataset.name={SHIFT_SOURCES[shift.source]!r}, got {config.dataset.name!r}.")


def validate(config):
    """Checks every value; raises ValueError naming the key and what is allowed."""
    _one_of(config.method, "method", tuple(METHODS))
    checks.seed(config.seed, "config.seed")
    distribution.check_distribution(config.distribution, config.distribution_devices)
    _one_of(config.dataset.name, "dataset.name", DATASETS)
    _one_of(config.dataset.augment, "dataset.augment", AUGMENTATIONS)
    _positive_int(config, "dataset.pad_to", allow_none=True)
    _positive_int(config, "dataset.validation_size", minimum=0)
    _positive_int(config, "dataset.train_subset", allow_none=True)
    _fraction(config.dataset.label_noise, "dataset.label_noise", closed=True)
    checks.seed(config.dataset.label_noise_seed, "config.dataset.label_noise_seed")
    _streamed_dataset(config)
    _one_of(config.model.name, "model.name", MODELS)
    _model_kwargs(config)
    dropout = checks.fraction(config.model.dropout, "config.model.dropout", closed=False)
    if dropout and config.model.name not in DROPOUT_MODELS:
        _fail("model.dropout", f"is only supported by models {DROPOUT_MODELS}, got model.name={config.model.name!r}.")
    _one_of(config.subspace.shape, "subspace.shape", SHAPES)
    _positive_int(config, "subspace.num_bends", minimum=0)
    _positive_int(config, "subspace.num_vertices", minimum=2)
    _non_negative_number(config.subspace.beta, "subspace.beta")
    _one_of(config.subspace.sampling, "subspace.sampling", SAMPLINGS)
    _one_of(config.subspace.init, "subspace.init", INITS)
    _positive_int(config, "train.epochs")
    _positive_int(config, "train.batch_size")
    _positive_int(config, "train.warmup_epochs", minimum=0)
    # warmup_epochs >= epochs is clamped to epochs - 1 (and logged) by the schedule.
    for key in ("learning_rate", "momentum", "weight_decay"):
        _non_negative_number(config.train[key], f"train.{key}")
    _one_of(config.train.weight_decay_mode, "train.weight_decay_mode", WEIGHT_DECAY_MODES)
    if not config.train.learning_rate > 0:
        _fail("train.learning_rate", f"must be > 0, got {config.train.learning_rate!r}.")
    _fraction(config.train.label_smoothing, "train.label_smoothing", closed=False)
    _one_of(config.train.precision, "train.precision", PRECISIONS)
    checks.boolean(config.train.jit_compile, "config.train.jit_compile")
    _positive_int(config, "eval.batch_size")
    _positive_int(config, "eval.batchnorm_steps", allow_none=True)
    alphas = config.eval.alphas
    if not alphas or isinstance(alphas, str) or any(not checks.is_number(a) or not 0 <= a <= 1 for a in alphas):
        _fail("eval.alphas", f"must be a non-empty list of numbers in [0, 1], got {alphas!r}.")
    checks.boolean(config.eval.test_every_epoch, "config.eval.test_every_epoch")
    _positive_int(config, "eval.random_ensemble", minimum=0)
    _validate_shift(config)
    _validate_baseline(config)
    _validate_connectivity(config)
    _seeds(config)
    return config
