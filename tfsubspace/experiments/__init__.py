"""The methods the training binary runs, one module per family.

`METHODS` maps `config.method` to "module:function". Each function takes
(config, datasets, workdir) and returns (the model to save and export, a dict
of named results); the binary merges the results, saves, exports and reports.
Modules are imported only when their method runs.

>>> "standard" in METHODS and "subspace" in METHODS
True
>>> runner("subspace").__module__
'tfsubspace.experiments.subspace'
"""

import importlib

METHODS = {
    "standard": "tfsubspace.experiments.standard:run",
    "subspace": "tfsubspace.experiments.subspace:run",
    "standard_ensemble": "tfsubspace.experiments.baselines:run_standard_ensemble",
    "swa": "tfsubspace.experiments.baselines:run_swa",
    "snapshot": "tfsubspace.experiments.baselines:run_snapshot",
    "fge": "tfsubspace.experiments.baselines:run_fge",
    "connect": "tfsubspace.experiments.connectivity:run_connect",
    "spro": "tfsubspace.experiments.connectivity:run_spro",
}


def runner(method):
    """The run function of `method` (a key of METHODS)."""
    if method not in METHODS:
        raise ValueError(f"config.method must be one of {tuple(METHODS)}, got {method!r}.")
    module, function = METHODS[method].split(":")
    return getattr(importlib.import_module(module), function)
