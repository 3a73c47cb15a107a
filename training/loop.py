"""The loop over epochs and steps, and what happens between steps, each at its own frequency:
loss lines, displays, validation, checkpoints; at an epoch's end the schedule and its saves."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from data.image_io import DataError
from data.loader import set_loader_epoch, until_bad
from engine.checkpoint import iter_label
from engine.distributed import Runtime, any_rank, barrier, check_ranks_agree, gather_to_all, mean_across_ranks, unwrap
from engine.saver import Saver, reached_max_steps
from engine.train_state import TrainState, check_finite, crossed
from inference.validation import BadValidationData
from inference.validation_hook import ValidationHook
from models.base_model import BaseModel
from models.sync_batchnorm import SyncBatchNorm2d
from options.base import Options
from reporting.progress import EpochProgress
from reporting.reporter import Reporter
from reporting.sink import TrainPoint
from util.errors import UserError

log = logging.getLogger("train")

Losses = dict[str, torch.Tensor]


def broadcast_buffers(net: nn.Module) -> bool:
    """Only buffers that drift apart between processes need rank 0's copy at every forward:
    plain batch norm's running statistics. Synced BN keeps them equal everywhere, and instance
    or group norm have none."""
    has_buffers = any(True for _ in net.buffers())
    return has_buffers and not any(isinstance(m, SyncBatchNorm2d) for m in net.modules())


@dataclass
class Run:
    """What the loop needs besides the model and the counters, built once before it starts."""
    opt: Options
    runtime: Runtime
    exp_dir: Path
    loader: DataLoader
    reporter: Reporter
    saver: Saver
    validation: ValidationHook | None = None
    images_at: tuple[int, bool, bool] = (-1, False, False)   # (step, shown live, kept as a snapshot)

    @property
    def last_epoch(self) -> int:
        return self.opt.n_epochs + self.opt.n_epochs_decay


def describe_run(opt: Options, runtime: Runtime, model: BaseModel, dataset: Dataset, loader: DataLoader) -> None:
    log.info("%d training images, %d steps per epoch, %d process(es) x batch %d", len(dataset), len(loader),
             runtime.world_size, opt.batch_size)
    for line in model.describe():
        log.info(line)
    for name, net in model.nets.items():
        log.debug("net %s:\n%s", name, unwrap(net))  # --verbose: the whole structure


def log_losses(run: Run, model: BaseModel, state: TrainState, losses: Losses, seconds_per_sample: float,
               data_seconds: float, bar: EpochProgress) -> None:
    shown = mean_across_ranks(losses, run.runtime)  # the step's only sync (host and ranks)
    values = {k: float(v) for k, v in shown.items()}
    check_finite(shown, state.step)
    run.reporter.report_losses(TrainPoint(
        epoch=state.epoch, epoch_iter=state.epoch_samples * run.runtime.world_size, step=state.step,
        epoch_frac=state.epoch_frac(run.runtime.world_size, run.loader.sampler.num_samples), lr=model.current_lr(),
        losses=values, timings={"time_per_sample": seconds_per_sample, "data_time": data_seconds}))
    if run.runtime.is_main:
        log.info("(epoch %d, step %d, %.3fs/sample) %s", state.epoch, state.step, seconds_per_sample,
                 " ".join(f"{k}: {v:.3f}" for k, v in values.items()))
    bar.show_losses(values)


def report_images(run: Run, model: BaseModel, epoch: int, step: int, live: bool, snapshot: bool) -> None:
    """Images to the displays, each kind at most once per step (``run.images_at``)."""
    done_live, done_snapshot = run.images_at[1:] if run.images_at[0] == step else (False, False)
    live, snapshot = live and not done_live, snapshot and not done_snapshot
    if live or snapshot:
        run.reporter.report_images(model.current_visuals(), epoch, step, snapshot=snapshot, live=live)
        barrier(run.runtime)
    run.images_at = (step, done_live or live, done_snapshot or snapshot)


def stopping_early(run: Run) -> bool:
    return run.validation is not None and run.validation.stopping


def report_and_save(run: Run, model: BaseModel, state: TrainState, losses: Losses, before: int,
                    t_step: float, t_data: float, bar: EpochProgress, last: bool = False) -> None:
    """What happens between steps, each at its own frequency. Every rank crosses the same
    thresholds: ``state.samples`` counts the global batch. ``last``: the run's last step, whose
    images every display gets (once), so the page shows where the run ended."""
    opt = run.opt
    if crossed(before, state.samples, opt.print_freq):
        log_losses(run, model, state, losses, (time.perf_counter() - t_step) / opt.batch_size, t_step - t_data, bar)
    # Live displays every --display_freq samples, a page snapshot every --update_html_freq.
    show = last or crossed(before, state.samples, opt.display_freq)
    keep = last or crossed(before, state.samples, opt.update_html_freq)
    report_images(run, model, state.epoch, state.step, live=show, snapshot=keep)
    if run.validation is not None:
        run.validation.after_step(before, model, state, losses)
    if crossed(before, state.samples, opt.save_latest_freq):
        run.saver.save_latest(model, state, losses)
        if opt.save_by_iter:
            run.saver.save(model, state, iter_label(state.samples), losses)


def end_epoch(run: Run, model: BaseModel, state: TrainState, losses: Losses, epoch_loss_sum: torch.Tensor,
              epoch_steps: int) -> None:
    # The plateau policy needs one metric for all ranks, or their learning rates drift apart.
    epoch_mean = {"loss": epoch_loss_sum / max(epoch_steps, 1)}
    lr = model.step_schedulers(float(mean_across_ranks(epoch_mean, run.runtime)["loss"]))
    finished = state.epoch
    state.next_epoch()
    log.info("end of epoch %d / %d, learning rate now %.7f", finished, run.last_epoch, lr)
    # Validated before the saves, so that they hold its count for --early_stop (a resume from
    # them does not validate this epoch's end again).
    if run.validation is not None:
        run.validation.after_epoch(finished, model, state, losses)
    if finished % run.opt.save_epoch_freq == 0 or finished == run.last_epoch:
        # '<epoch>' before 'latest': a kill between the two leaves 'latest' behind, and a resume
        # from it ends this epoch again and writes '<epoch>'; the other order would leave a
        # 'latest' past this epoch's end and no '<epoch>' ever.
        run.saver.save(model, state, str(finished), losses)
        run.saver.save(model, state, "latest", losses)


def finish(run: Run, model: BaseModel, state: TrainState) -> tuple[TrainState, BaseModel]:
    if run.runtime.distributed:
        digest = check_ranks_agree(model.nets, run.runtime)
        log.info("all %d processes hold identical weights (sha256 %s)", run.runtime.world_size, digest[:16])
    return state, model


class BadDataStop(UserError):
    """A sample whose pixels could not be decoded (damage a header does not show: a truncated
    file, NaN in a float TIFF) stopped the run, with the steps trained so far saved as 'latest'.
    Every rank raises it with the same message; train.py prints it once, from rank 0, labelled
    with ``where``: the rank that met the file (' (rank 1)'; '' in one process)."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def bad_data_anywhere(error: DataError | None, runtime: Runtime) -> bool:
    """Did any rank fail to decode its batch? Under DDP the others would otherwise wait for it
    in the step's gradient all-reduce until --dist_timeout: one number per step, like the stop
    signal's (engine/stop.py), makes every rank stop before the same step."""
    return any_rank(error is not None, runtime)


def stop_on_bad_data(run: Run, model: BaseModel, state: TrainState, losses: Losses, error: DataError | None,
                     trained: bool) -> None:
    """Save 'latest' as a stop signal does (every rank, the same step: a consistent state) when
    this run trained a step, then raise :class:`BadDataStop` naming the file on every rank."""
    if trained:
        run.saver.save_latest(model, state, losses)
    errors = gather_to_all(error, run.runtime)
    rank, message = next((rank, str(err)) for rank, err in enumerate(errors) if err is not None)
    where = f" (rank {rank})" if run.runtime.distributed else ""
    remedy = errors[rank].remedy
    if trained:
        raise BadDataStop(f"{message}; 'latest' saved after step {state.step} (epoch {state.epoch}) in "
                          f"{run.exp_dir}: {remedy}, then resume with --continue_train", where)
    raise BadDataStop(f"{message}; no step trained in this run, nothing saved: {remedy}, then run the "
                      "command again", where)


@contextmanager
def validation_images_checked(run: Run, model: BaseModel, state: TrainState, losses: Losses,
                              first_step: int) -> Iterator[None]:
    """A validation image that could not be decoded stops the run as a training image does:
    'latest' saved (every rank raises it at the same validation), one line naming the file."""
    try:
        yield
    except BadValidationData as bad:
        stop_on_bad_data(run, model, state, losses, bad.error, trained=state.step > first_step)


def run_epochs(run: Run, model: BaseModel, state: TrainState) -> tuple[TrainState, BaseModel]:
    """From ``state`` to the schedule's end, ``--max_steps``, a stop signal (the saver's), or
    ``--early_stop`` (the validation hook's ``stopping``: every rank sets it at the same step),
    which ends the run as ``--max_steps`` does: the step's images shown, 'latest' saved, and at an
    epoch's last step that epoch ended first."""
    opt, loader = run.opt, run.loader
    losses: Losses = {}
    first_step = state.step
    while state.epoch <= run.last_epoch:
        set_loader_epoch(loader, state.epoch, start_index=state.epoch_samples)
        epoch_loss_sum, epoch_steps = torch.zeros((), device=run.runtime.device), 0
        model.train()
        model.begin_epoch(state.epoch)
        batches = len(loader)   # what is left of this epoch (all of it unless resumed inside it)
        bar = EpochProgress(batches, state.epoch, run.last_epoch, enabled=run.runtime.is_main)
        stopping = epoch_ends = False
        t_data = time.perf_counter()
        for batch_data, bad in until_bad(loader):
            if bad_data_anywhere(bad, run.runtime):
                stop_on_bad_data(run, model, state, losses, bad, trained=state.step > first_step)
            before, t_step = state.samples, time.perf_counter()
            model.set_input(batch_data)
            losses = model.train_step()  # one D update, then one G update
            state.advance(opt.batch_size, run.runtime.world_size)
            epoch_loss_sum += losses["G_L1"] + losses["G_GAN"]
            epoch_steps += 1
            bar.update()
            epoch_ends = epoch_steps == batches
            last = reached_max_steps(opt.max_steps, state.step) or (epoch_ends and state.epoch == run.last_epoch)
            with validation_images_checked(run, model, state, losses, first_step):
                report_and_save(run, model, state, losses, before, t_step, t_data, bar, last)
            if stopping_early(run):
                report_images(run, model, state.epoch, state.step, live=True, snapshot=True)
            if run.saver.stop_if_asked(model, state, losses, epoch_ends) or stopping_early(run):
                stopping = True
                break
            t_data = time.perf_counter()
        bar.close()
        if stopping and not epoch_ends:
            run.saver.save_latest(model, state, losses)   # --early_stop (--max_steps saved it already)
            return finish(run, model, state)
        # A stop on an epoch's last step ends that epoch first, as a run going on would.
        last_step, ended_epoch = state.step, state.epoch
        with validation_images_checked(run, model, state, losses, first_step):
            end_epoch(run, model, state, losses, epoch_loss_sum, epoch_steps)
        if stopping_early(run):   # at this step, or by the epoch's own validation
            report_images(run, model, ended_epoch, last_step, live=True, snapshot=True)
            run.saver.save_latest(model, state, losses)
            return finish(run, model, state)
        if stopping:
            run.saver.stop_after_epoch(model, state, losses, finished=state.epoch > run.last_epoch)
            return finish(run, model, state)
    return finish(run, model, state)
