"""What a checkpoint file holds, in which version, and how files of earlier versions are read.

Two kinds of file, each written and read here:

- full (``<label>.pt``, format ``pix2pix-app/full/4``): ``specs`` (each network's architecture
  spec as plain values, models/networks/spec.py), the model's state (``nets``, ``optimizers``,
  ``schedulers``, ``scalers``, and per model e.g. ``image_pool``, ``ema``), the counters
  (``state``), every process's RNG streams, the ``options`` the run was started with, and
  ``execution`` (:class:`Execution`: the precision the weights were trained in, what decided it,
  and how OpenMP threads waited).
- generator (``<label>_net_G.pt``, format ``pix2pix-app/G/4``): ``spec`` (G's), ``net_G`` (its
  weights), ``options`` and ``execution``.
- both: ``digest``, the sha256 of everything else in the file (engine/checkpoint/digest.py),
  which the read (files.py ``load_file``) checks before anything uses the weights.
- ``best.pt`` / ``best_net_G.pt`` (``--best_metric``, engine/best.py) are these two kinds with
  one more entry, ``best``: the metric, its value, the step and the epoch that chose the state.

Older files are upgraded on reading. Version 1 (``.../full/1``, ``.../G/1``) kept only the
options: the caller hands down ``specs_of_options`` (the model layer's parser, which the engine
may not import), which turns their options into specs. Versions 1 and 2 have no ``execution``:
it is filled from their options where those say it (a typed ``--amp none|bf16|fp16``) and is
``not recorded`` elsewhere. Versions 1 to 3 have no ``digest``: they load unchecked (said once,
at info level), while a version 4 file without one is refused as damaged. Only these fields
change, so an older file resumes bit-exactly.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from engine.checkpoint.digest import DIGEST_KEY, TensorDigests, content_digest
from engine.checkpoint.files import (CheckpointError, DamagedCheckpointError, full_path, generator_path, load_file,
                                     load_unchecked, save_atomic)
from engine.rng import capture_rng_state
from engine.train_state import TrainState

FORMAT_VERSION = 4
FULL_FORMAT = f"pix2pix-app/full/{FORMAT_VERSION}"
GENERATOR_FORMAT = f"pix2pix-app/G/{FORMAT_VERSION}"
# Earlier versions this program still reads, by kind.
OLDER_FORMATS = {kind: tuple(f"pix2pix-app/{kind}/{v}" for v in range(1, FORMAT_VERSION)) for kind in ("full", "G")}
CURRENT = {"full": FULL_FORMAT, "G": GENERATOR_FORMAT}
UNRECORDED = "not recorded"

SpecsOfOptions = Callable[[Mapping[str, Any]], dict[str, dict]]


@dataclass(frozen=True)
class Execution:
    """How a run's weights were computed, beyond its options: ``--amp auto`` and the OpenMP
    waiting are decided from the machine as a process starts, so the options alone do not say."""
    amp: str          # the precision trained in: none, bf16 or fp16
    amp_source: str   # what decided it: "--amp auto", "--amp bf16", "--amp auto, pinned by ..."
    omp_wait: str     # how the writing process's OpenMP threads waited: PASSIVE, ACTIVE, default, ...

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Execution:
        return cls(str(record["amp"]), str(record["amp_source"]), str(record["omp_wait"]))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Execution:
        """What the options of a file written before ``execution`` existed say: a typed mode is
        certain; ``auto`` was decided at run time and not kept."""
        amp = str(options.get("amp", "none"))  # files from before --amp trained in fp32
        if amp == "auto":
            return cls(UNRECORDED, "--amp auto, in a file from before the choice was recorded", UNRECORDED)
        return cls(amp, f"--amp {amp}", UNRECORDED)

    def describe(self) -> str:
        """``trained in bf16 (decided by --amp auto), OpenMP wait PASSIVE``"""
        if self.amp == UNRECORDED:
            return f"precision {UNRECORDED} ({self.amp_source}), OpenMP wait {self.omp_wait}"
        # --amp none is full precision: "trained in none" read as if nothing were known.
        precision = "fp32" if self.amp == "none" else self.amp
        return f"trained in {precision} (decided by {self.amp_source}), OpenMP wait {self.omp_wait}"


def options_dict(opt: argparse.Namespace) -> dict:
    """Options as plain values (what torch.load(weights_only=True) accepts)."""
    plain = (str, int, float, bool, type(None))
    out = {}
    for key, value in vars(opt).items():
        if key.startswith("_"):
            continue
        if isinstance(value, (list, tuple)):
            value = list(value)
        elif not isinstance(value, plain):
            value = str(value)
        out[key] = value
    return out


def write_generator(path: Path, net_state: Mapping[str, torch.Tensor], spec: dict, options: dict,
                    execution: Execution | None = None, extra: Mapping[str, Any] | None = None,
                    known: TensorDigests | None = None) -> None:
    """``execution`` None: a generator not trained by this program's loop (a test's, an
    export's), for which the options say what there is to say."""
    execution = execution or Execution.from_options(options)
    save_atomic(sealed({"format": GENERATOR_FORMAT, "spec": spec, "net_G": dict(net_state), "options": options,
                        "execution": execution.as_dict(), **(extra or {})}, known), path)


def sealed(payload: Mapping[str, Any], known: TensorDigests | None = None) -> dict:
    """``payload`` with its content digest, which every read checks (``known``: the digests of
    tensors already hashed for the other file of the same save)."""
    return {**payload, DIGEST_KEY: content_digest(payload, known)}


def save_training(exp_dir: Path, label: str, model: Any, state: TrainState, opt: argparse.Namespace,
                  execution: Execution, rng_per_rank: list[dict] | None = None,
                  extra: Mapping[str, Any] | None = None) -> None:
    """Write ``<label>.pt`` (everything) and ``<label>_net_G.pt`` (G's spec, weights, options),
    both with ``execution``; ``extra``: entries recorded in both beside those (``best``: the
    score that chose the state).

    ``model`` gives ``specs`` and ``state_dict()``; ``rng_per_rank`` holds every process's RNG
    streams (dropout differs per rank), so that a resume with the same number of processes
    continues each rank's streams exactly."""
    options, specs = options_dict(opt), model.specs
    rng_per_rank = rng_per_rank or [capture_rng_state()]
    payload = {"format": FULL_FORMAT, "specs": specs, "state": asdict(state), "world_size": len(rng_per_rank),
               "rng": rng_per_rank[0], "rng_per_rank": rng_per_rank, "options": options,
               "execution": execution.as_dict(), **model.state_dict(), **(extra or {})}
    known: TensorDigests = {}   # G's weights, hashed for the full file, are the generator file's
    writes = ((full_path(exp_dir, label), lambda p: save_atomic(sealed(payload, known), p)),
              (generator_path(exp_dir, label), lambda p: write_generator(p, payload["nets"]["G"], specs["G"],
                                                                         options, execution, extra, known)))
    for path, write in writes:
        try:
            write(path)
        except OSError as err:  # a full disk, a quota, a folder gone read-only
            raise CheckpointError(f"{path}: could not be written ({err.strerror or err}); the file it would "
                                  "have replaced is intact and no partial file is left") from None


def reseal(path: Path) -> str:
    """Seal ``path``, a file of the current version edited on purpose (its options, say), with
    the digest of what it holds now; returns its format. Earlier versions carry no digest and
    load as they are; other files are not this program's to seal."""
    contents = load_unchecked(path)
    kind = kind_of(contents)
    if kind is None:
        raise CheckpointError(f"{path}: not a checkpoint or generator file of this program (no pix2pix-app format)")
    if contents["format"] != CURRENT[kind]:
        raise CheckpointError(f"{path}: a {contents['format']} file carries no digest and loads as it is")
    save_atomic(sealed(contents), path)   # sealed() replaces the old digest
    return contents["format"]


def kind_of(ckpt: Mapping[str, Any]) -> str | None:
    """``full``, ``G`` (any version this program reads), or None."""
    fmt = ckpt.get("format") if isinstance(ckpt, Mapping) else None
    for kind, current in CURRENT.items():
        if fmt == current or fmt in OLDER_FORMATS[kind]:
            return kind
    return None


def require_digest(ckpt: Mapping[str, Any], path: Path) -> None:
    """A file of the current version was written with its digest (which the read checked): one
    without it is not what this program wrote."""
    kind = kind_of(ckpt)
    if kind is not None and ckpt["format"] == CURRENT[kind] and DIGEST_KEY not in ckpt:
        raise DamagedCheckpointError.at(path, f"no digest in a {ckpt['format']} file")


def upgrade(ckpt: dict, path: Path, specs_of_options: SpecsOfOptions) -> dict:
    """``ckpt`` in the current format: a version 1 file gets the specs its options describe,
    versions 1 and 2 the execution their options tell (:meth:`Execution.from_options`); versions
    1 to 3 have no digest, and keep none (it describes a file, not what was read from one)."""
    require_digest(ckpt, path)
    kind = kind_of(ckpt)
    if kind is None or ckpt["format"] == CURRENT[kind]:
        return ckpt
    upgraded = {**ckpt, "format": CURRENT[kind]}
    if "execution" not in ckpt:   # versions 1 and 2
        upgraded["execution"] = Execution.from_options(ckpt["options"]).as_dict()
    spec_key = "specs" if kind == "full" else "spec"
    if spec_key not in ckpt:   # version 1
        try:
            specs = specs_of_options(ckpt["options"])
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: its options do not name a known network ({err})") from None
        upgraded[spec_key] = specs if kind == "full" else specs["G"]
    return upgraded


def read(path: Path, kind: str, specs_of_options: SpecsOfOptions,
         map_location: str | torch.device = "cpu") -> dict:
    """The file at ``path`` in the current format; CheckpointError if it is not a ``kind`` file."""
    ckpt = load_file(path, map_location=map_location)
    if kind_of(ckpt) != kind:
        what = "full training checkpoint" if kind == "full" else "generator file"
        raise CheckpointError(f"{path}: not a {what} of this program")
    return upgrade(ckpt, path, specs_of_options)


def full_checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` does not load as a full checkpoint (any version), in a few words; None when it does."""
    try:
        ckpt = load_file(path, mmap=True)
        require_digest(ckpt, path)
    except DamagedCheckpointError as err:
        return f"damaged: {err.how}"
    except CheckpointError as err:
        return str(err).removeprefix(f"{path}: ")
    return None if kind_of(ckpt) == "full" else "not a full checkpoint"


def is_full_checkpoint(path: Path) -> bool:
    """Does ``path`` load as a full checkpoint (any version)?"""
    return full_checkpoint_problem(path) is None
