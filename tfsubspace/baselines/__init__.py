"""Baselines of the papers, built on the same layers, batch norm and evaluation.

- `SWA` (+ `SWASchedule`): stochastic weight averaging with a cyclic or high
  constant late-phase LR, m checkpoints, batch norm recomputed (000 §D.4, §F);
  its checkpoints also form the SWA-checkpoint ensemble (001 §4.5).
- `SWAG`: diagonal + low-rank Gaussian over SWA checkpoints (001 §4.5).
- `snapshot_schedule` + `SnapshotEnsemble`: cosine cycles with restarts,
  one snapshot per cycle (Huang et al. 2017; 001 §4.5, 003 §6).
- `FGE` + `FGESnapshots`: 003 §5's triangular cyclic LR, snapshots at each
  cycle's minimum.
- `corrupt_labels`: the fixed, seeded label noise of 001 §4.3.
- `SparseCategoricalCrossentropyWithLabelSmoothing`: the label-smoothing
  baseline of 001 §4.3 for integer labels.

Example:

>>> from tfsubspace import baselines
>>> sorted(name for name in baselines.__all__ if name[0].isupper())
['CheckpointCollector', 'FGE', 'FGESnapshots', 'SWA', 'SWAG', 'SWASchedule', 'SnapshotEnsemble', 'SparseCategoricalCrossentropyWithLabelSmoothing']
"""

from tfsubspace.baselines.fge import FGE, FGESnapshots
from tfsubspace.baselines.label_noise import corrupt_labels
from tfsubspace.baselines.label_smoothing import SparseCategoricalCrossentropyWithLabelSmoothing
from tfsubspace.baselines.snapshot import SnapshotEnsemble, snapshot_schedule
from tfsubspace.baselines.checkpoints import CheckpointCollector, ensemble_checkpoints, model_with_weights
from tfsubspace.baselines.swa import SWA, SWASchedule
from tfsubspace.baselines.swag import SWAG

__all__ = [
    "CheckpointCollector",
    "FGE",
    "FGESnapshots",
    "SWA",
    "SWAG",
    "SWASchedule",
    "SnapshotEnsemble",
    "SparseCategoricalCrossentropyWithLabelSmoothing",
    "corrupt_labels",
    "ensemble_checkpoints",
    "model_with_weights",
    "snapshot_schedule",
]
