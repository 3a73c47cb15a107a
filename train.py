"""Train pix2pix: ``python train.py`` (demo data) or ``python train.py --dataroot ... --name ...``.

Several processes (DDP): ``torchrun --nproc_per_node=N train.py ...``, or ``python train.py
--nproc N`` / ``--gpu_ids 0,1`` on one machine; see docs/distributed.md. SIGTERM, SIGINT and
SIGUSR1 end the run after the step in flight, with ``latest`` saved (engine/stop.py).
"""
from __future__ import annotations

# Before anything imports torch: how OpenMP threads wait (spin on a quiet machine, sleep on an
# oversubscribed one; util/omp_env.py), unless the user set a policy; and freed memory kept for
# the next step instead of faulted in again (util/allocator.py).
from util.allocator import keep_freed_memory
from util.omp_env import set_omp_wait_policy

set_omp_wait_policy()
keep_freed_memory()

import logging
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from data import create_dataset
from data.loader import create_dataloader, set_loader_epoch
from engine.checkpoint import (AUTO, CheckpointError, Execution, auto_resume_label, existing_checkpoints, full_path,
                               iter_label, load_label, read_options, reference_files, resume_training)
from engine.distributed import (Runtime, barrier, check_ranks_agree, ddp_wrapper, distributed_runtime, launch_env,
                                mean_across_ranks, peer_failures_reported, unwrap)
from engine.launch import LaunchError, end_rank, launch, processes_to_start
from engine.rng import seed_everything
from engine.execution import resolved_options, settle_execution
from engine.speed import apply_backend_settings, backend_settings_from
from engine.run_folder import prepare_folder
from engine.saver import Saver, reached_max_steps
from engine.stop import ForcedStop, TrainingStopped, exit_status, signal_name, stop_signals
from engine.train_state import TrainState, check_finite, crossed
from models import create_model
from models.base_model import BaseModel
from models.sync_batchnorm import SyncBatchNorm2d
from models.reference_compat import reference_run_options
from options.base import Options
from options.configs import data_config, experiment_dir
from options.parse import format_options, parse_options
from options.train import resume_options
from options.validation import build_validation_hook, validation_split
from inference.val_fid import CACHE_FOLDER as VAL_FID_FOLDER
from inference.validation_hook import ValidationHook
from reporting.logs import setup_logging
from reporting.sink import display_outputs
from reporting.progress import EpochProgress
from reporting.reporter import Reporter, build_reporter
from reporting.sink import TrainPoint
from util.errors import OptionError, UserError

log = logging.getLogger("train")

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

    @property
    def last_epoch(self) -> int:
        return self.opt.n_epochs + self.opt.n_epochs_decay


def load_data(opt: Options, runtime: Runtime) -> tuple[Dataset, DataLoader]:
    if opt.use_demo:
        from datasets.make_demo import ensure_demo_dataset
        if runtime.is_main:
            ensure_demo_dataset(opt.dataroot)
        barrier(runtime)  # the other ranks read the demo set only once it is complete
    dataset = create_dataset(opt.dataset_mode, data_config(opt))
    loader = create_dataloader(dataset, opt.batch_size, shuffle=not opt.serial_batches, num_workers=opt.num_threads,
                               seed=opt.seed, rank=runtime.rank, world_size=runtime.world_size,
                               pin_memory=runtime.device.type == "cuda")
    return dataset, loader


def resume_label(opt: Options, exp_dir: Path) -> str | None:
    """The checkpoint this run resumes from: the one ``--epoch`` / ``--load_iter`` name, or with
    ``--continue_train auto`` the one there is (None: start fresh); None without --continue_train."""
    if not opt.continue_train:
        return None
    label = load_label(opt)
    if opt.continue_train == AUTO:
        return auto_resume_label(exp_dir, label, reference_files(exp_dir, label) is not None)
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


def describe_run(opt: Options, runtime: Runtime, model: BaseModel, dataset: Dataset, loader: DataLoader) -> None:
    log.info("%d training images, %d steps per epoch, %d process(es) x batch %d", len(dataset), len(loader),
             runtime.world_size, opt.batch_size)
    for line in model.describe():
        log.info(line)
    for name, net in model.nets.items():
        log.debug("net %s:\n%s", name, unwrap(net))  # --verbose: the whole structure


def log_losses(run: Run, model: BaseModel, state: TrainState, losses: dict[str, torch.Tensor],
               seconds_per_sample: float, data_seconds: float, bar: EpochProgress) -> None:
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


def report_and_save(run: Run, model: BaseModel, state: TrainState, losses: dict[str, torch.Tensor], before: int,
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
    if show or keep:
        run.reporter.report_images(model.current_visuals(), state.epoch, state.step, snapshot=keep, live=show)
        barrier(run.runtime)
    if run.validation is not None:
        run.validation.after_step(before, model, state, losses)
    if crossed(before, state.samples, opt.save_latest_freq):
        run.saver.save_latest(model, state, losses)
        if opt.save_by_iter:
            run.saver.save(model, state, iter_label(state.samples), losses)


def end_epoch(run: Run, model: BaseModel, state: TrainState, losses: dict[str, torch.Tensor],
              epoch_loss_sum: torch.Tensor, epoch_steps: int) -> None:
    # The plateau policy needs one metric for all ranks, or their learning rates drift apart.
    epoch_mean = {"loss": epoch_loss_sum / max(epoch_steps, 1)}
    lr = model.step_schedulers(float(mean_across_ranks(epoch_mean, run.runtime)["loss"]))
    finished = state.epoch
    state.next_epoch()
    log.info("end of epoch %d / %d, learning rate now %.7f", finished, run.last_epoch, lr)
    if finished % run.opt.save_epoch_freq == 0 or finished == run.last_epoch:
        run.saver.save(model, state, "latest", losses)
        run.saver.save(model, state, str(finished), losses)
    if run.validation is not None:
        run.validation.after_epoch(finished, model, state, losses)


def finish(run: Run, model: BaseModel, state: TrainState) -> tuple[TrainState, BaseModel]:
    if run.runtime.distributed:
        digest = check_ranks_agree(model.nets, run.runtime)
        log.info("all %d processes hold identical weights (sha256 %s)", run.runtime.world_size, digest[:16])
    return state, model


def train(opt: Options, runtime: Runtime) -> tuple[TrainState, BaseModel]:
    exp_dir = experiment_dir(opt)
    # Every check that can refuse the run comes before its folder is touched (run_folder.py).
    label = resume_label(opt, exp_dir)
    # The options the user did not type are the checkpoint's (and checked once they are known).
    recorded = recorded_options(opt, exp_dir, label) if label is not None else {}
    opt, adopted, changed, steered = resume_options(opt, recorded)
    dataset, loader = load_data(opt, runtime)
    val_split = validation_split(opt)
    apply_backend_settings(backend_settings_from(opt), runtime.device)
    seed_everything(opt.seed)  # the same initial weights on every process
    model = create_model(opt, runtime)
    state, resumed, execution = start_state(opt, runtime, model, exp_dir, label)
    if adopted:
        log.info("options from the checkpoint: %s", ", ".join(adopted))
    if changed:
        log.warning("resuming with options that differ from the checkpoint's: %s; the run is no longer the same "
                    "as an uninterrupted one", ", ".join(changed))
    if steered:   # validation does not change what is trained
        log.info("validation settings changed: %s", ", ".join(steered))
    if reached_max_steps(opt.max_steps, state.step):
        log.info("already at step %d (--max_steps %d): nothing to train; raise --max_steps to go on",
                 state.step, opt.max_steps)
        return state, model
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    if state.epoch > last_epoch:
        schedule = f"--n_epochs {opt.n_epochs} + --n_epochs_decay {opt.n_epochs_decay} = {last_epoch} epochs"
        if not resumed:   # nothing would be written: a mistake, not a finished run
            raise OptionError(f"nothing to train: the run would start at epoch {state.epoch} (--epoch_count), "
                              f"after the schedule's last ({schedule})")
        where = (f"at the end of epoch {state.epoch - 1}, the schedule's last" if state.epoch_samples == 0
                 else f"in epoch {state.epoch} (step {state.step}), past the schedule's last")
        log.info("training already complete: the checkpoint is %s (%s); raise --n_epochs or --n_epochs_decay to "
                 "go on", where, schedule)
        return state, model
    # Each network in its own DDP (a no-op in one process); checkpoints are taken from the
    # unwrapped modules, so they load in runs of any size.
    model.wrap_networks(ddp_wrapper(runtime, broadcast_buffers))
    barrier(runtime)   # every process passed its checks before rank 0 touches the folder
    if runtime.is_main:
        prepare_folder(exp_dir, fresh=not resumed, options_text=format_options(opt, resolved_options(execution)),
                       outputs=[*display_outputs(), VAL_FID_FOLDER])
        describe_run(opt, runtime, model, dataset, loader)

    with ExitStack() as cleanup:
        # Every display, main process only; a resume's displays drop what came after its step.
        reporter = build_reporter(opt, exp_dir, enabled=runtime.is_main, resumed_at=state.step if resumed else None)
        cleanup.callback(reporter.close)
        saver = Saver(opt, runtime, exp_dir, cleanup.enter_context(stop_signals()), execution)
        run = Run(opt, runtime, exp_dir, loader, reporter, saver)
        run.validation = build_validation_hook(opt, runtime, exp_dir, val_split, resumed, saver,
                                               reporter.report_metrics, loader.sampler.num_samples)
        losses: dict[str, torch.Tensor] = {}
        while state.epoch <= run.last_epoch:
            set_loader_epoch(loader, state.epoch, start_index=state.epoch_samples)
            epoch_loss_sum, epoch_steps = torch.zeros((), device=runtime.device), 0
            model.train()
            model.begin_epoch(state.epoch)
            batches = len(loader)   # what is left of this epoch (all of it unless resumed inside it)
            bar = EpochProgress(batches, state.epoch, run.last_epoch, enabled=runtime.is_main)
            stopping = epoch_ends = False
            t_data = time.perf_counter()
            for batch_data in loader:
                before, t_step = state.samples, time.perf_counter()
                model.set_input(batch_data)
                losses = model.train_step()  # one D update, then one G update
                state.advance(opt.batch_size, runtime.world_size)
                epoch_loss_sum += losses["G_L1"] + losses["G_GAN"]
                epoch_steps += 1
                bar.update()
                epoch_ends = epoch_steps == batches
                last = reached_max_steps(opt.max_steps, state.step) or (epoch_ends and state.epoch == run.last_epoch)
                report_and_save(run, model, state, losses, before, t_step, t_data, bar, last)
                if run.saver.stop_if_asked(model, state, losses, epoch_ends):
                    stopping = True
                    break
                t_data = time.perf_counter()
            bar.close()
            if stopping and not epoch_ends:
                return finish(run, model, state)
            # A --max_steps stop on an epoch's last step ends that epoch first, as a run going on would.
            end_epoch(run, model, state, losses, epoch_loss_sum, epoch_steps)
            if stopping:
                run.saver.stop_after_epoch(model, state, losses, finished=state.epoch > run.last_epoch)
                return finish(run, model, state)
        return finish(run, model, state)


def run_process(opt: Options) -> int:
    """Train in this process: alone, or as one rank of a job started by torchrun or --nproc.
    Returns the exit status."""
    where, is_main = "", True
    try:
        with peer_failures_reported(), distributed_runtime(opt.gpu_ids, opt.dist_timeout) as runtime:
            where, is_main = runtime.label, runtime.is_main
            setup_logging(is_main=runtime.is_main, verbose=opt.verbose)
            train(opt, runtime)
    except UserError as err:   # one line per process; anything else is a bug and keeps its traceback
        print(f"train.py: error{where}: {err}", file=sys.stderr)
        return 1
    except TrainingStopped as stopped:
        if is_main:
            print(f"train.py: {stopped}", file=sys.stderr)
        return exit_status(stopped.signum)
    except ForcedStop as forced:
        print(f"train.py{where}: stopped at once by a second {signal_name(forced.signum)}; the checkpoints on disk "
              "are whole (a save in progress was abandoned, not half-written)", file=sys.stderr)
        return exit_status(forced.signum)
    except KeyboardInterrupt:
        print(f"train.py{where}: interrupted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    opt = parse_options(argv, is_train=True)
    setup_logging(verbose=opt.verbose)
    if launch_env() is not None:  # already one rank of a job (torchrun, or a child of --nproc)
        return run_process(opt)
    try:
        nprocs = processes_to_start(opt.nproc, opt.gpu_ids)
        if nprocs == 1:
            return run_process(opt)
        launch(run_process, opt, nprocs)
    except LaunchError as err:
        print(f"train.py: {'' if err.stopped_by_signal else 'error: '}{err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("train.py: interrupted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    exit_code = main()
    if launch_env() is not None:   # one rank of a torchrun job: leave as --nproc's children do
        end_rank(exit_code)
    sys.exit(exit_code)
