"""One set of argument checks for the library and for `config.validate` alike.

Each check returns the value in its plain Python type or raises one-line
`ValueError` "<name> must be <allowed values>, got <value>." Everywhere:

- numpy scalars (`np.int64(3)`, `np.float32(1.0)`) and 0-d numpy arrays are
  accepted wherever a Python number is;
- bools are refused where a number is asked for (`True` is not 1 here);
- integers must be integral types (`3.0` is not an integer).

`name` is printed as given, so the library passes "`beta`" and the config
passes "config.subspace.beta". Because both go through the same function, a
value never passes one and fails the other.

Example:

>>> import numpy as np
>>> from tfsubspace import checks
>>> checks.integer(np.int64(3), "`steps`", minimum=1)
3
>>> checks.number(np.float32(0.5), "`beta`", minimum=0)
0.5
>>> checks.seed(7)
7
>>> checks.point_indices([2, 0], 3)
(0, 2)
>>> checks.integer(True, "`steps`", minimum=1)
Traceback (most recent call last):
...
ValueError: `steps` must be an integer >= 1, got True.
"""

import math
import numbers
import random

import numpy as np

#: Every seed of the library lies in [0, SEED_MAX]: the α sampler, the data
#: order, label noise, `keras.utils.set_random_seed` (numpy needs < 2**32) and
#: stateless TF ops (int32 seeds) all take it unchanged.
SEED_MAX = 2**31 - 2


def _scalar(value):
    """A 0-d numpy array as its numpy scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def is_integer(value):
    """True for Python and numpy integers (never for bools).

    >>> is_integer(3), is_integer(np.uint8(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    value = _scalar(value)
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value):
    """True for Python and numpy integers and floats (never for bools or complex).

    >>> is_number(0.5), is_number(np.float32(2)), is_number(False), is_number("1")
    (True, True, False, False)
    """
    value = _scalar(value)
    return is_integer(value) or isinstance(value, (float, np.floating))


def _range_text(minimum, maximum, minimum_open=False, maximum_open=False):
    if minimum is not None and maximum is not None:
        return f"in {'(' if minimum_open else '['}{minimum}, {maximum}{')' if maximum_open else ']'}"
    if minimum is not None:
        return f"{'>' if minimum_open else '>='} {minimum}"
    if maximum is not None:
        return f"{'<' if maximum_open else '<='} {maximum}"
    return ""


def _fail(name, allowed, value, allow_none):
    raise ValueError(f"{name} must be {allowed}{' or None' if allow_none else ''}, got {value!r}.")


def integer(value, name, minimum=None, maximum=None, allow_none=False):
    """`value` as an int in [minimum, maximum] (either bound optional).

    >>> integer(np.int32(0), "config.dataset.validation_size", minimum=0)
    0
    >>> integer(None, "`steps`", minimum=1, allow_none=True) is None
    True
    """
    if value is None and allow_none:
        return None
    text = " ".join(filter(None, ["an integer", _range_text(minimum, maximum)]))
    if not is_integer(value):
        _fail(name, text, value, allow_none)
    result = int(_scalar(value))
    if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
        _fail(name, text, value, allow_none)
    return result


def number(value, name, minimum=None, maximum=None, minimum_open=False, maximum_open=False, allow_none=False):
    """`value` as a finite float within the bounds (`*_open`: the bound itself is excluded).

    >>> number(1, "`temperature`", minimum=0, minimum_open=True)
    1.0
    >>> number(float("nan"), "`beta`", minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: `beta` must be a finite number >= 0, got nan.
    """
    if value is None and allow_none:
        return None
    text = " ".join(filter(None, ["a finite number", _range_text(minimum, maximum, minimum_open, maximum_open)]))
    if not is_number(value):
        _fail(name, text, value, allow_none)
    result = float(_scalar(value))
    if (
        not math.isfinite(result)
        or (minimum is not None and (result <= minimum if minimum_open else result < minimum))
        or (maximum is not None and (result >= maximum if maximum_open else result > maximum))
    ):
        _fail(name, text, value, allow_none)
    return result


def fraction(value, name, closed=True):
    """A number in [0, 1] (`closed=False`: [0, 1)), e.g. label noise or dropout.

    >>> fraction(np.float64(0.2), "`fraction`")
    0.2
    """
    return number(value, name, minimum=0, maximum=1, maximum_open=not closed)


def boolean(value, name):
    """True or False (numpy bools too); 0/1 and strings are refused.

    >>> boolean(np.bool_(True), "`from_logits`")
    True
    """
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def one_of(value, name, allowed):
    """`value` if it is one of `allowed`.

    >>> one_of("line", "config.subspace.shape", ("line", "simplex"))
    'line'
    """
    if isinstance(value, (list, dict, set)) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}.")
    return value


def seed(value, name="`seed`", allow_none=False):
    """An int in [0, SEED_MAX]; with `allow_none`, None picks one at random (then fixed).

    >>> seed(np.int64(5))
    5
    >>> 0 <= seed(None, allow_none=True) <= SEED_MAX
    True
    """
    if value is None and allow_none:
        return random.randint(0, SEED_MAX)
    if not is_integer(value) or not 0 <= int(_scalar(value)) <= SEED_MAX:
        _fail(name, "an integer in [0, 2**31 - 2]", value, allow_none)
    return int(_scalar(value))


def point_indices(indices, num_points, name="`indices`"):
    """`indices` as a sorted tuple of distinct ints in [0, num_points).

    >>> point_indices(np.array([1, 1, 0]), 2)
    (0, 1)
    """
    allowed = f"a list of point indices in [0, {num_points - 1}]"
    if isinstance(indices, (str, bytes)) or is_integer(indices):
        raise ValueError(f"{name} must be {allowed}, got {indices!r}.")
    try:
        values = list(indices)
    except TypeError:
        raise ValueError(f"{name} must be {allowed}, got {indices!r}.") from None
    if any(not is_integer(i) or not 0 <= int(_scalar(i)) < num_points for i in values):
        raise ValueError(f"{name} must be {allowed}, got {indices!r}.")
    return tuple(sorted({int(_scalar(i)) for i in values}))
