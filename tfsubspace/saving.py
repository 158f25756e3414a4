"""Loading `.keras` files safely, with errors that say what is wrong.

`ts.load_model(path)` is `keras.saving.load_model` with safe mode always on
(a file can never make it run code: a `Lambda` layer's pickled bytecode is
refused) and one-line errors for files that are missing, corrupt, truncated,
or hold code. Subspace models load with their classes already registered.

Example:

>>> import os, tempfile, keras, tfsubspace as ts
>>> path = os.path.join(tempfile.mkdtemp(), "line.keras")
>>> ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), ts.Line()).save(path)
>>> ts.load_model(path).subspace_shape
Line()
>>> with open(path, "wb") as f:
...     _ = f.write(b"garbage")
>>> ts.load_model(path)
Traceback (most recent call last):
...
ValueError: `filepath` ... is not a .keras archive (corrupt or truncated); save the model again.
"""

import json
import os
import zipfile

import keras


def load_model(filepath, custom_objects=None, compile=True):
    """Loads a `.keras` file in safe mode; bad files raise one clear ValueError.

    Args:
        filepath: path of a `.keras` archive written by `model.save`.
        custom_objects: your own registered classes, as for Keras.
        compile: whether to restore the optimizer, loss and metrics.
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`filepath` {path!r} does not exist.")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise ValueError(f"`filepath` {path!r} is not a .keras archive (corrupt or truncated); save the model again.")
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=True)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise ValueError(
                f"`filepath` {path!r} holds code (e.g. a Lambda layer), which tfsubspace never runs from a "
                "file; rebuild that model in Python and load only its weights (model.load_weights)."
            ) from None
        raise ValueError(f"`filepath` {path!r} cannot be loaded: {_first_line(error)}") from None
    except (json.JSONDecodeError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"`filepath` {path!r} is damaged ({type(error).__name__}: {_first_line(error)}); save the model again."
        ) from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
