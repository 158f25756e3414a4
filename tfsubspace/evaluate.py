"""`ts.evaluate`: the public face of `tfsubspace.evaluation`.

Sweeps along a subspace, ensembles, curves (paper 003 Table 2), temperature
scaling and out-of-distribution scores, all on one evaluation core that knows
logits from probabilities and reads any labelled data (see
`tfsubspace.evaluation`).

Example:

>>> import tfsubspace as ts
>>> ts.evaluate.sweep is ts.evaluation.sweep, ts.evaluate.DEFAULT_BATCHNORM_STEPS
(True, 20)
"""

from tfsubspace.evaluation import *  # noqa: F401,F403
from tfsubspace.evaluation import __all__  # noqa: F401
