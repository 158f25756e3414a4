"""Progress bars for long evaluations (Keras' `Progbar`).

`verbose="auto"` shows a bar when stdout is a terminal (interactive use) and
stays quiet otherwise (tests, logs); 1 always shows it, 0 never.

Example:

>>> from tfsubspace.evaluation.progress import Progress
>>> with Progress(3, verbose=0, title="points") as bar:
...     for _ in range(3):
...         bar.advance()
>>> bar.done
3
"""

import sys

import keras


def check_verbose(verbose):
    if verbose == "auto":
        return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 0
    if isinstance(verbose, bool) or verbose not in (0, 1):
        raise ValueError(f"`verbose` must be 'auto', 0 or 1, got {verbose!r}.")
    return int(verbose)


class Progress:
    """A `keras.utils.Progbar` of `total` steps titled `title`, shown when `verbose` is 1."""

    def __init__(self, total, verbose="auto", title=None):
        self.total = total
        self.verbose = check_verbose(verbose)
        self.title = title
        self.done = 0
        self._bar = None

    def __enter__(self):
        if self.verbose:
            if self.title:
                print(self.title, flush=True)
            self._bar = keras.utils.Progbar(self.total, verbose=1, unit_name="step")
        return self

    def advance(self, **values):
        self.done += 1
        if self._bar is not None:
            self._bar.update(self.done, values=list(values.items()) or None)

    def __exit__(self, *exc):
        return False
