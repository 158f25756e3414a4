"""Writing files so that a crash, a full disk or a planted symlink never does harm.

- `write_atomically(path, text)` writes a temporary file created fresh
  (`O_CREAT | O_EXCL | O_NOFOLLOW`: an existing entry, such as a symlink
  planted at `results.json.tmp`, is unlinked first and never followed), fsyncs
  it and renames it over `path`. Renaming replaces a symlink at `path` itself,
  not the file it points to.
- `replacing(path)` does the same for writers that want a path (matplotlib,
  h5py): it yields the fresh temporary path and renames it into place on success.
- `remove(path)` deletes a file, a directory tree or a symlink (never its target).
- `naming(path)` gives an OSError without a filename (a full disk) that path;
- `inside(path, root)` tells whether `path` resolves inside `root`.
- `describe(error)` turns an `OSError` into one line naming the path.

Example:

>>> import os, tempfile
>>> from tfsubspace import files
>>> directory = tempfile.mkdtemp()
>>> outside = os.path.join(tempfile.mkdtemp(), "precious")
>>> with open(outside, "w") as f:
...     _ = f.write("keep me")
>>> os.symlink(outside, os.path.join(directory, "results.json.tmp"))
>>> files.write_atomically(os.path.join(directory, "results.json"), "{}")
>>> open(outside).read(), sorted(os.listdir(directory))
('keep me', ['results.json'])
"""

import contextlib
import errno
import hashlib
import os
import shutil

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def sha256(path):
    """Hex SHA-256 of the file at `path`, read in 1 MiB blocks (checkpoint and cache manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove(path):
    """Deletes `path` whatever it is (a symlink is unlinked, its target untouched); absent is fine."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def create_fresh(path, mode=0o644):
    """Opens a new file at `path` for writing; whatever was there (even a symlink) is removed first."""
    remove(path)
    return os.fdopen(os.open(path, _FLAGS, mode), "w")


def fsync_directory(path):
    """Flushes a directory's entries (renames) to disk; a no-op where unsupported."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def naming(path):
    """Gives an OSError raised inside the block (a write to a full disk has none) `path` as its filename."""
    try:
        yield
    except OSError as error:
        if error.filename:
            raise
        raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from None


def write_atomically(path, text):
    """Writes `text` to `path` through a fresh temporary file and an atomic rename."""
    temporary = f"{path}.tmp"
    try:
        with naming(path), create_fresh(temporary) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            remove(temporary)
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def replacing(path, suffix=""):
    """Yields a fresh temporary path (ending in `suffix`) that replaces `path` if the block succeeds."""
    temporary = f"{path}.tmp{suffix}"
    create_fresh(temporary).close()  # claims the name: nothing planted there is followed
    try:
        with naming(path):
            yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            remove(temporary)
        raise


def inside(path, root):
    """True if `path` (symlinks resolved) is `root` or lies under it."""
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
                errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied"}


def describe(error, path=None):
    """One line for an OSError: the path it concerns and what went wrong.

    >>> import errno
    >>> describe(OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.keras"))
    'cannot write /runs/x/model.keras: the disk is full (No space left on device)'
    """
    path = path or error.filename or "a file"
    text = str(error).strip()
    reason = error.strerror or (text.splitlines()[0] if text else type(error).__name__)
    known = _DISK_ERRORS.get(error.errno)
    return f"cannot write {path}: {known} ({reason})" if known else f"cannot write {path}: {reason}"
