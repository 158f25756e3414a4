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

from tfsubspace.experiments import METHODS

DATASETS = ("fashion_mnist", "mnist", "cifar10", "cifar100")
MODELS = ("mlp", "small_cnn", "cresnet20")
DROPOUT_MODELS = ("mlp", "small_cnn")
SHAPES = ("line", "bezier", "polychain", "simplex")
SAMPLINGS = ("per_batch", "per_layer")
INITS = ("independent", "point")
AUGMENTATIONS = (None, "crop", "flip_crop")


def base_config():
    """Defaults shared by every experiment (paper 001 §4 recipe, scaled down)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.method = "subspace"

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "fashion_mnist"
    config.dataset.data_dir = ml_collections.FieldReference(None, field_type=str)
    config.dataset.augment = ml_collections.FieldReference(None, field_type=str)
    config.dataset.pad_to = ml_collections.FieldReference(None, field_type=int)
    config.dataset.validation_size = 0
    config.dataset.train_subset = ml_collections.FieldReference(None, field_type=int)

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
    config.train.weight_decay = 5e-4
    config.train.warmup_epochs = 1
    # Also train a standard model with the same recipe, for comparison.
    config.train.standard_baseline = False

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 1000
    config.eval.alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    # Batches of eval.batch_size training examples per batch-norm recompute
    # (None: a full pass). 3 x 1000 examples: more than the 2,560 that
    # benchmarks/sweep_cost.py found within 0.2 accuracy points of a full pass.
    config.eval.batchnorm_steps = ml_collections.FieldReference(3, field_type=int)
    config.eval.export = True
    return config


def _fail(key, message):
    raise ValueError(f"config.{key} {message}")


def _lookup(config, key):
    for part in key.split("."):
        config = config[part]
    return config


def _positive_int(config, key, allow_none=False, minimum=1):
    value = _lookup(config, key)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(key, f"must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}.")


def _one_of(value, key, allowed):
    if value not in allowed:
        _fail(key, f"must be one of {allowed}, got {value!r}.")


def _non_negative_number(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        _fail(key, f"must be a number >= 0, got {value!r}.")


def validate(config):
    """Checks every value; raises ValueError naming the key and what is allowed."""
    _one_of(config.method, "method", tuple(METHODS))
    _positive_int(config, "seed", minimum=0)
    _one_of(config.dataset.name, "dataset.name", DATASETS)
    _one_of(config.dataset.augment, "dataset.augment", AUGMENTATIONS)
    _positive_int(config, "dataset.pad_to", allow_none=True)
    _positive_int(config, "dataset.validation_size", minimum=0)
    _positive_int(config, "dataset.train_subset", allow_none=True)
    _one_of(config.model.name, "model.name", MODELS)
    dropout = config.model.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        _fail("model.dropout", f"must be a number in [0, 1), got {dropout!r}.")
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
    if config.train.warmup_epochs >= config.train.epochs:
        _fail("train.warmup_epochs", f"must be < train.epochs ({config.train.epochs}), got {config.train.warmup_epochs}.")
    for key in ("learning_rate", "momentum", "weight_decay"):
        _non_negative_number(config.train[key], f"train.{key}")
    if not config.train.learning_rate > 0:
        _fail("train.learning_rate", f"must be > 0, got {config.train.learning_rate!r}.")
    _positive_int(config, "eval.batch_size")
    _positive_int(config, "eval.batchnorm_steps", allow_none=True)
    alphas = config.eval.alphas
    if not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a <= 1 for a in alphas):
        _fail("eval.alphas", f"must be a non-empty list of numbers in [0, 1], got {alphas!r}.")
    return config
