"""Where a run starts: the checkpoint it resumes from (if any) and the options that
checkpoint trained with, and the counters the loop begins at."""
from __future__ import annotations

import logging
from pathlib import Path

from engine.checkpoint import (AUTO, CheckpointError, Execution, auto_resume_label, existing_checkpoints, full_path,
                               load_label, read_options, reference_files, require_resumable, resume_training)
from engine.distributed import Runtime
from engine.execution import settle_execution
from engine.rng import seed_everything
from engine.saver import reached_max_steps
from engine.train_state import TrainState
from models.base_model import BaseModel
from models.reference_compat import reference_run_options
from options.base import Options
from util.errors import OptionError

log = logging.getLogger("train")


def resume_label(opt: Options, exp_dir: Path) -> str | None:
    """The checkpoint this run resumes from: the one ``--epoch`` / ``--load_iter`` name, or with
    ``--continue_train auto`` the one there is (None: start fresh); None without --continue_train."""
    if not opt.continue_train:
        return None
    label = load_label(opt)
    if opt.continue_train == AUTO:
        return auto_resume_label(exp_dir, label, reference_files(exp_dir, label) is not None)
    # Before the options are read from the folder: a missing label would otherwise show as the
    # defaults' problem (a reference run's architecture is read from the files of that label).
    require_resumable(exp_dir, label)
    return label


def recorded_options(opt: Options, exp_dir: Path, label: str) -> dict:
    """The options checkpoint ``label`` trained with: a full checkpoint records them; the
    reference's G and D files record none, but show their architecture in their weights."""
    path, reference = full_path(exp_dir, label), reference_files(exp_dir, label)
    if path.is_file() or reference is None:
        return read_options(path)
    return reference_run_options(*reference, vars(opt))


def start_state(opt: Options, runtime: Runtime, model: BaseModel, exp_dir: Path,
                label: str | None) -> tuple[TrainState, bool, Execution]:
    """Resume from ``label`` (:func:`resume_label`) or start fresh; returns the counters, whether
    they were resumed, and the precision and OpenMP waiting the run trains with (a resume's from
    its checkpoint, engine/execution.py)."""
    settled: list[Execution] = []

    def settle(recorded: Execution | None) -> None:
        settled.append(settle_execution(opt, model, runtime.device, recorded))
    if label is not None:
        state = resume_training(exp_dir, label, model, opt, runtime.rank, runtime.world_size, on_execution=settle)
        # The rate of the current schedule at this epoch (a resume that changes it says so here).
        log.info("resumed from %s at epoch %d, step %d; learning rate %.7f", label, state.epoch, state.step,
                 model.current_lr())
        return state, True, settled[0]
    if existing_checkpoints(exp_dir) and not opt.overwrite:
        raise CheckpointError(f"{exp_dir} already holds checkpoints; pass --continue_train to resume, "
                              "--overwrite to start again, or choose another --name")
    # Dropout and the loader differ per process; the weights do not (seeded before the model).
    seed_everything(opt.seed + runtime.rank)
    settle(None)   # --amp auto: measured (on copies, random streams restored), cached
    return TrainState(epoch=opt.epoch_count), False, settled[0]


def nothing_left(opt: Options, state: TrainState, resumed: bool) -> bool:
    """Whether the run is already where it should end (said in one line); a fresh run that would
    start past its schedule is a mistake, not a finished run, and is refused."""
    if reached_max_steps(opt.max_steps, state.step):
        log.info("already at step %d (--max_steps %d): nothing to train; raise --max_steps to go on",
                 state.step, opt.max_steps)
        return True
    if opt.early_stop and state.validations_since_best >= opt.early_stop:   # 0 in a fresh run
        # The count may have reached the limit in a run that had none (--early_stop 0) and ended
        # otherwise: say where the count stands, not that the run stopped early.
        count = state.validations_since_best
        log.info("training already complete by --early_stop %d: %d validations without a better %s as of step %d; "
                 "raise --early_stop above %d or set it to 0 to go on",
                 opt.early_stop, count, opt.best_metric, state.step, count)
        return True
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    if state.epoch <= last_epoch:
        return False
    schedule = f"--n_epochs {opt.n_epochs} + --n_epochs_decay {opt.n_epochs_decay} = {last_epoch} epochs"
    if not resumed:   # nothing would be written
        raise OptionError(f"nothing to train: the run would start at epoch {state.epoch} (--epoch_count), "
                          f"after the schedule's last ({schedule})")
    where = (f"at the end of epoch {state.epoch - 1}, the schedule's last" if state.epoch_samples == 0
             else f"in epoch {state.epoch} (step {state.step}), past the schedule's last")
    log.info("training already complete: the checkpoint is %s (%s); raise --n_epochs or --n_epochs_decay to go on",
             where, schedule)
    return True
