"""Atomic file writes: a reader (or a crash) never sees half a file; and a lock so that
processes sharing a cache build each entry once (:func:`cached_json`).

Write to a temporary file in the same directory, flush and fsync it, then ``os.replace``
it over the destination — a rename within one filesystem is atomic on POSIX.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextmanager
def exclusive(lock_path: str | os.PathLike, *, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block: parallel
    sweep units that need the same cache entry wait for the one that builds it, instead of all
    building it at once on cores they share. Released when the block ends or the process dies.

    ``remove``: the holder deletes the lock file when its block ends, so that a finished build
    leaves nothing behind; a waiter that then gets the lock of the deleted file sees that the
    path no longer names it and locks the file at the path instead (one holder at a time)."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock_path, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not remove or _names(lock_path, handle):
            break
        handle.close()
    try:
        yield
    finally:
        if remove:
            lock_path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def is_locked(lock_path: str | os.PathLike) -> bool:
    """Whether some process holds :func:`exclusive` on ``lock_path`` now (a missing file: no)."""
    try:
        fd = os.open(lock_path, os.O_RDWR)  # writable: NFS emulates flock with POSIX locks, which need it
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if this call took it
    return False


def _names(path: Path, handle: IO) -> bool:
    """Whether ``path`` still names the open file ``handle`` (not deleted or replaced)."""
    try:
        now, held = os.stat(path), os.fstat(handle.fileno())
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
    except FileNotFoundError:
        return False


def cached_json(path: str | os.PathLike, build: Callable[[], Any],
                valid: Callable[[Any], bool] = lambda data: True) -> Any:
    """The JSON value stored at ``path`` when it reads back and is ``valid``; else ``build()``,
    written atomically — by one process at a time: the others wait on ``.<name>.lock`` and then
    read what it wrote. Where the folder is not writable the value is built, not cached."""
    path = Path(path)

    def read() -> Any:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if valid(data) else None

    data = read()
    if data is not None:
        return data
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive(path.parent / f".{path.name}.lock"))
        except OSError:  # a read-only cache folder only costs the next process the work
            return build()
        data = read()  # another process may have written it while this one waited
        if data is None:
            data = build()
            try:
                atomic_write_text(path, json.dumps(data))
            except OSError:
                pass
        return data
