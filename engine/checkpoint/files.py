"""Checkpoint files on disk: their names, the atomic write, and the safe read (which checks a
file's content digest, engine/checkpoint/digest.py, before anything uses what it holds).

Nothing here knows what a file holds (engine/checkpoint/format.py does).
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from engine.checkpoint.digest import DIGEST_KEY, DigestTypeError, content_digest
from util.errors import UserError
from util.file_modes import umask_mode

log = logging.getLogger(__name__)

# Fault-injection hook for the fault campaign and its tests (benchmarks/fault_campaign.py): seconds
# to wait inside every checkpoint write, after the data is in the temporary file and before the
# rename, so that a kill can land there deterministically. Unset in normal use.
PAUSE_IN_SAVE_ENV = "PIX2PIX_TEST_PAUSE_IN_SAVE"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable, or does not fit the requested model."""


class DamagedCheckpointError(CheckpointError):
    """A file whose contents are not what was written: its content digest does not match."""

    @classmethod
    def at(cls, path: Path, how: str = "digest mismatch") -> DamagedCheckpointError:
        # A factory, not __init__: the message stays the one argument, as pickling (a rank's
        # error sent to the launching process) expects.
        err = cls(f"{path}: damaged ({how}: its contents changed after it was written, on disk, in a copy or by "
                  "an edit); use another checkpoint (another --epoch, e.g. best) or copy it again; a file you "
                  f"edited on purpose: python scripts/reseal_checkpoint.py {path}")
        err.how = how   # kept in __dict__, which pickling carries with the message
        return err

    how: str = "digest mismatch"


def full_path(exp_dir: Path, label: str) -> Path:
    return exp_dir / f"{label}.pt"


def generator_path(exp_dir: Path, label: str, suffix: str = ".pt") -> Path:
    """Our generator-only file (``.pt``), or an export of it (``.onnx``)."""
    return exp_dir / f"{label}_net_G{suffix}"


def reference_paths(exp_dir: Path, label: str, model_suffix: str = "") -> tuple[Path, Path]:
    """``<label>_net_G.pth`` and ``<label>_net_D.pth``: the reference implementation's files
    (``model_suffix``: the reference's --model_suffix, e.g. ``_A`` for ``<label>_net_G_A.pth``)."""
    return exp_dir / f"{label}_net_G{model_suffix}.pth", exp_dir / f"{label}_net_D{model_suffix}.pth"


def iter_label(samples: int) -> str:
    """The label of a save kept per iteration (--save_by_iter, --load_iter)."""
    return f"iter_{samples}"


def label_option(label: str) -> str:
    """The option that selects ``label``, as a user types it (the inverse of :func:`load_label`)."""
    numbered = numbered_kind(label)
    return f"--load_iter {numbered[1]}" if numbered and numbered[0] == "iter" else f"--epoch {label}"


def load_label(opt: argparse.Namespace) -> str:
    """The label --epoch / --load_iter select."""
    return iter_label(opt.load_iter) if opt.load_iter > 0 else str(opt.epoch)


def existing_checkpoints(exp_dir: Path) -> list[Path]:
    return sorted(exp_dir.glob("*.pt"))


def numbered_kind(label: str) -> tuple[str, int] | None:
    """(``epoch`` or ``iter``, its number) of a numbered label (``12``, ``iter_4800``); None for
    ``latest``, ``best`` and the like."""
    prefix = iter_label(0).removesuffix("0")
    if label.isdigit():
        return "epoch", int(label)
    if label.startswith(prefix) and label.removeprefix(prefix).isdigit():
        return "iter", int(label.removeprefix(prefix))
    return None


def prune_numbered(exp_dir: Path, label: str, keep: int) -> list[Path]:
    """After ``label`` (a numbered save) was written: remove the files of the same kind's saves
    numbered below the ``keep`` highest up to ``label``'s number; returns the files removed.
    Saves numbered above it (left by a later state that a resume went back from) are not this
    run's to judge yet: a run going on writes over them."""
    mine = numbered_kind(label)
    if mine is None or keep < 1:
        return []
    labels = {p.stem.removesuffix("_net_G") for p in exp_dir.glob("*.pt")}
    same = sorted(n for kind, n in filter(None, map(numbered_kind, labels)) if kind == mine[0] and n <= mine[1])
    removed = []
    for number in same[:-keep]:
        old = str(number) if mine[0] == "epoch" else iter_label(number)
        for path in (full_path(exp_dir, old), generator_path(exp_dir, old)):
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def save_atomic(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over the
    target: a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask_mode(fd)
        with os.fdopen(fd, "wb") as f:
            writer = _WholeWrites(f)
            try:
                torch.save(obj, writer)
            except RuntimeError:
                if writer.error is not None:
                    raise writer.error from None  # the disk's own error, not torch's rewording
                raise
            f.flush()
            _pause_for_fault_tests()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _WholeWrites:
    """The file object torch.save writes to. On a full disk torch's zip writer turns the
    failed write into ``RuntimeError: unexpected pos ...`` (measured on a full tmpfs); this
    keeps the OSError (ENOSPC, EDQUOT, EIO) so the caller can say what happened."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            written = self.f.write(data)
            self.f.flush()  # the error of this write, here, rather than at a later one
            return written
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.f.flush()


def remove_stray_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of writes that a kill interrupted (``save_atomic`` cleans up
    after itself on any error, but nothing runs after SIGKILL or a power cut). Called before a
    run writes into ``folder``, when no other write can be in flight there."""
    stray = sorted(folder.glob(".*.pt.*.tmp"))
    for path in stray:
        log.warning("removing %s, left by a checkpoint write that was interrupted", path.name)
        path.unlink(missing_ok=True)
    return stray


def _pause_for_fault_tests() -> None:
    pause = os.environ.get(PAUSE_IN_SAVE_ENV)
    if pause:
        log.debug("pausing %s s inside a checkpoint write (%s)", pause, PAUSE_IN_SAVE_ENV)
        time.sleep(float(pause))


def read_options(path: Path) -> dict:
    """The options a full checkpoint records, without reading its tensors (memory-mapped: a
    256 px checkpoint is 686 MB, and the resume reads it again in full); empty for a file that
    records none (the reference's) or does not load, which the resume itself then reports."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - any unreadable file: the resume names the problem
        return {}
    options = saved.get("options") if isinstance(saved, dict) else None
    return options if isinstance(options, dict) else {}


# Files read without a digest to check, each said once (at info level) per process.
_UNVERIFIED: set[Path] = set()


# Files whose digest this process has checked, with the identity (inode, size, mtime) they had:
# --continue_train auto checks the file it chooses, and the resume that then loads it need not
# hash its hundreds of megabytes again. A file written since, or replaced, is checked anew.
_VERIFIED: dict[Path, tuple[int, int, int]] = {}


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def load_file(path: Path, map_location: str | torch.device = "cpu", *, mmap: bool = False) -> dict:
    """The file's contents, checked against the digest it carries (DamagedCheckpointError
    otherwise); files that carry none (earlier versions', the reference's) load unchecked.
    ``mmap``: map the tensors' bytes instead of reading them (for a check that keeps nothing)."""
    before = _identity(path)
    contents = _load(path, map_location, mmap)
    # Equal before and after the read: the bytes read are those of the file the identity names.
    same_file = before is not None and _identity(path) == before
    if isinstance(contents, Mapping) and not (same_file and _VERIFIED.get(path) == before):
        check_digest(contents, path)
        if same_file and DIGEST_KEY in contents:
            _VERIFIED[path] = before
    return contents


def check_digest(contents: Mapping[str, Any], path: Path) -> None:
    recorded = contents.get(DIGEST_KEY)
    if recorded is None:
        if path not in _UNVERIFIED:
            _UNVERIFIED.add(path)
            log.info("%s carries no content digest (written by an earlier version of this program or by the "
                     "reference implementation): loaded without checking its contents", path)
        return
    try:
        matches = content_digest(contents) == recorded
    except DigestTypeError:   # a value no writer of ours stores: not what was written either
        matches = False
    if not matches:
        raise DamagedCheckpointError.at(path)


def load_unchecked(path: Path) -> Any:
    """The file's contents without checking its digest: only for sealing an edited file anew."""
    return _load(path, "cpu")


def _load(path: Path, map_location: str | torch.device, mmap: bool = False) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if mmap:
        try:
            return torch.load(path, map_location=map_location, weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - files torch cannot map (its legacy format): read as below
            pass
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which would run the file's code.
        raise CheckpointError(f"{path}: refused as unsafe: it holds Python objects other than "
                              "tensors and plain values, so it is not a checkpoint of this project "
                              "or of the reference implementation") from None
    except Exception as err:  # a truncated or foreign file: say which, not a pickle traceback
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
