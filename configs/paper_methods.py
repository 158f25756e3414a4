"""Shared by the ImageNet / Tiny-ImageNet / CIFAR-100 paper configs: the four methods and the smoke variant.

Not a config itself. `--config=configs/<file>.py:<arg>` with arg one of
METHODS ("standard", "line", "layerwise", "simplex"), optionally suffixed
"_smoke" (e.g. "line_smoke"): a few steps at 32 px on tiny widths, run by
tests/test_paper_configs.py on tfds.testing.mock_data or a generated folder.
"""

METHODS = ("standard", "line", "layerwise", "simplex")


def parse(arg):
    """(method, smoke) of a config argument; ValueError names the allowed values."""
    arg = "line" if arg is None else str(arg)
    method, smoke = (arg[:-len("_smoke")], True) if arg.endswith("_smoke") else (arg, False)
    if method not in METHODS:
        allowed = ", ".join(f"{m!r}, '{m}_smoke'" for m in METHODS)
        raise ValueError(f"config argument must be one of {allowed}, got {arg!r}")
    return method, smoke


def apply(config, method):
    """001 §4: a line (β = 1, one α per batch), its layerwise variant, or a 3-vertex simplex; or standard."""
    if method == "standard":
        config.method = "standard"
        return config
    config.method = "subspace"
    config.subspace.beta = 1.0
    config.subspace.shape = "simplex" if method == "simplex" else "line"
    config.subspace.num_vertices = 3
    config.subspace.sampling = "per_layer" if method == "layerwise" else "per_batch"
    if method != "simplex":
        config.eval.alphas = tuple(round(i / 10, 10) for i in range(11))
    return config


def smoke(config, image_size=32, width=4):
    """A few steps of the same pipeline and model family at toy sizes (seconds, on mock data)."""
    config.distribution = "none"  # tests run in-process: one strategy per process (BUILD_NOTES.md)
    config.train.epochs = 1
    config.train.warmup_epochs = 0
    config.train.batch_size = 4
    config.dataset.train_subset = 8
    if config.dataset.name in ("imagenet2012", "tiny_imagenet"):
        config.dataset.image_size = image_size
    config.model.kwargs.width = width
    if config.model.name in ("resnet18", "resnet50", "wide_resnet50_2"):
        config.model.kwargs.blocks_per_stage = (1, 1, 1, 1)  # tracing 50 layers alone takes a minute
    config.eval.batch_size = 8
    config.eval.batchnorm_steps = 1
    config.eval.alphas = (0.0, 0.5, 1.0)
    config.eval.export = False
    return config
