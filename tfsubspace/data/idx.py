"""IDX files (the MNIST family's format) and the pinned checksums of Fashion-MNIST.

>>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])).tolist()
[7, 9]
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import types
import zlib
from pathlib import Path
from typing import Union

import numpy as np

# SHA-256 of the *unzipped* IDX files of the official Fashion-MNIST release,
# so that gzipped and plain copies verify alike.
FASHION_MNIST_SHA256 = types.MappingProxyType(
    {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
)

_IDX_UNSIGNED_BYTE = 0x08


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (unzipped) IDX file holding unsigned bytes.

    The format is strict: two zero bytes, the data-type code 0x08, the number of
    dimensions, one big-endian uint32 per dimension, then exactly
    ``prod(dims)`` bytes. Anything else raises ValueError naming ``source``.
    The result is a read-only view of ``data``.

    >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    array([[1, 2, 3],
           [4, 5, 6]], dtype=uint8)
    """
    size = len(data)
    if size < 4:
        raise ValueError(
            f"{source}: not an IDX file: {size} bytes is shorter than the 4-byte magic number"
        )
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{source}: bad IDX magic number 0x{bytes(data[:4]).hex()}: "
            "the first two bytes must be zero"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _IDX_UNSIGNED_BYTE:
        raise ValueError(
            f"{source}: unsupported IDX data type code 0x{dtype_code:02x}; "
            "only 0x08 (unsigned byte) is supported"
        )
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if size < header_size:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header_size} "
            f"header bytes, the file has {size} bytes"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_size = header_size + math.prod(dims)
    if size != expected_size:
        problem = "is truncated" if size < expected_size else "has trailing bytes"
        raise ValueError(
            f"{source}: IDX file {problem}: its header declares shape {dims}, "
            f"so it should be {expected_size} bytes long, but it is {size} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _read_unzipped_bytes(path: Path) -> bytes:
    """Return a file's bytes, gunzipped if they are gzip data (whatever the name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # IDX files start with 0x0000, gzip with 0x1f8b
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from err


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzipped or not, into a read-only array.

    Raises ValueError naming the file when it is corrupt or truncated.

    >>> x_test = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> x_test.shape, x_test.dtype.name
    ((10000, 28, 28), 'uint8')
    """
    path = Path(path)
    return parse_idx(_read_unzipped_bytes(path), str(path))


def read_verified(path: Path) -> np.ndarray:
    data = _read_unzipped_bytes(path)
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    expected = FASHION_MNIST_SHA256[stem]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path}: SHA-256 of the unzipped contents does not match Fashion-MNIST: "
            f"expected {expected}, actual {actual}. The file is corrupt or not the "
            "official release; reinstall dataset-fashion-mnist or fix the data directory."
        )
    return parse_idx(data, str(path))

