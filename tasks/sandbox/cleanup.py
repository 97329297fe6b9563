"""Removing a run's folder whatever a candidate left in it; never raises.

``shutil.rmtree`` recurses (a 1,500-deep chain of folders made with ``dir_fd`` raises
RecursionError), stops at a folder it may not read or enter, and holds one descriptor per
level. :func:`remove_tree` works on one level at a time: it opens the top folder once, and for
each folder in it makes it readable and enterable, unlinks its files and symlinks (never
followed: a link out of the folder is removed, not what it points at) and moves its
sub-folders up to the top folder under fresh names, then removes it. Depth becomes breadth, so
the work is linear in the number of entries and at most two descriptors are open. A harness
that is not root needs a folder's own write permission to move it and its read and search
permission to empty it: :func:`_unlock` gives a locked folder mode 0700 without following a
link put in its place.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat

log = logging.getLogger("pathbench.sandbox")
_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _unlock(name: str, dir_fd: int | None) -> bool:
    """Give folder ``name`` mode 0700 (its owner may then list, enter and move it); a symlink
    in its place is never followed. False when that could not be done."""
    o_path = getattr(os, "O_PATH", 0)
    try:
        if not o_path:  # not Linux: no way to chmod what was opened without following
            os.chmod(name, 0o700, dir_fd=dir_fd)
            return True
        fd = os.open(name, o_path | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=dir_fd)
    except (OSError, NotImplementedError):
        return False
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)  # fchmod refuses an O_PATH descriptor
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _open_dir(name: str, dir_fd: int | None) -> int | None:
    """A descriptor of folder ``name`` (made readable and enterable first when it is not)."""
    for attempt in range(2):
        try:
            return os.open(name, _FLAGS, dir_fd=dir_fd)
        except PermissionError:
            if attempt or not _unlock(name, dir_fd):
                return None
        except OSError:
            return None
    return None


def _is_dir(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _empty(folder: int, top: int, fresh: itertools.count, moved: list[str] | None) -> int:
    """Unlink everything in ``folder`` but its sub-folders, which move up into ``top`` (their new
    names appended to ``moved``; with ``moved`` None they stay); the entries removed or moved."""
    done = 0
    try:
        os.fchmod(folder, 0o700)
    except OSError:
        pass
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if not _is_dir(name, folder):
            try:
                os.unlink(name, dir_fd=folder)
                done += 1
            except OSError:
                pass
            continue
        if moved is None:
            continue
        unlocked = False
        for _ in range(100):  # a fresh top-level name the candidate did not take already
            new = f".pathbench-cleanup-{next(fresh)}"
            try:
                os.rename(name, new, src_dir_fd=folder, dst_dir_fd=top)
                done += 1
                moved.append(new)
                break
            except FileExistsError:
                continue
            except PermissionError:  # not root: moving a folder writes its "..", so it must be writable
                if unlocked or not _unlock(name, folder):
                    break
                unlocked = True
            except OSError as err:
                if err.errno not in (39, 17):  # ENOTEMPTY / EEXIST: the name is taken
                    break
    return done


def remove_tree(path: str) -> bool:
    """Remove ``path`` and everything under it; True when it is gone. Never raises."""
    try:
        if not os.path.lexists(path):
            return True
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return True
        top = _open_dir(path, None)
        if top is None:
            return False
        try:
            fresh = itertools.count()
            progress = 1
            while progress and os.listdir(top):  # a pass that removes nothing ends it
                progress = _empty(top, top, fresh, None)  # the top's files; its folders stay
                todo = os.listdir(top)
                while todo:  # folders moved up join the same pass
                    name = todo.pop()
                    folder = _open_dir(name, top)
                    if folder is not None:
                        try:
                            progress += _empty(folder, top, fresh, todo)
                        finally:
                            os.close(folder)
                    try:
                        os.rmdir(name, dir_fd=top)
                        progress += 1
                    except OSError:
                        pass
        finally:
            os.close(top)
        os.rmdir(path)
        return True
    except (OSError, ValueError, RecursionError) as err:
        log.warning("could not remove the sandbox folder %s: %s", path, err)
        return not os.path.lexists(path)
