"""Writing results so that a failing write (a read-only folder, a full disk, a quota) ends with
one line naming the file and leaves nothing half-written.

A results folder is built in a hidden sibling and renamed into place once complete, so a run
that fails leaves the previous folder as it was; a single image is written to a temporary
file and renamed, so it is either whole or absent.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from util.errors import UserError

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


class OutputError(UserError, ValueError):
    """A result could not be written; the message is one line that names the file."""


def write_error(err: OSError, path: Path) -> OutputError:
    where = err.filename if err.filename else path
    return OutputError(f"{where}: could not be written ({err.strerror or err}); nothing half-written is left")


def printable_name(name: str) -> str:
    """``name`` as text that can be written as UTF-8: a file name that is not valid UTF-8 (its
    bytes came through as surrogates) shows its odd bytes as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _inside(name: object, folders: tuple[Path, ...]) -> bool:
    if not isinstance(name, (str, bytes, os.PathLike)):
        return False
    path = Path(os.fsdecode(name)).absolute()
    return any(path == f or f in path.parents or path in f.parents for f in folders)


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``final``; when the block ends, it replaces ``final``.

    An OSError about a path in or above either folder becomes :class:`OutputError`; on any
    failure the staged folder is removed and ``final`` keeps what it held before.
    """
    final = final.absolute()
    created = [p for p in final.parents if not p.exists()]   # removed again if the block fails
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
        staging.mkdir()   # mode 0o777 less the umask, as the folder it becomes
    except OSError as err:
        raise write_error(err, final) from None
    try:
        yield staging
        old = None
        if final.exists():
            old = final.with_name(f"{staging.name}.old")
            os.rename(final, old)
        os.rename(staging, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        _remove(staging, created)
        # Writers that get a file object (PIL, zip) raise without a file name.
        if not (_inside(err.filename, (staging, final)) or (err.filename is None and err.errno in WRITE_ERRNOS)):
            raise
        raise write_error(err, final) from None
    except BaseException:
        _remove(staging, created)
        raise


def _remove(staging: Path, created: list[Path]) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    for folder in created:   # deepest first; only while empty
        try:
            folder.rmdir()
        except OSError:
            break
