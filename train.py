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
from contextlib import ExitStack
from typing import Sequence

from torch.utils.data import DataLoader, Dataset

from data import create_dataset, targets_problem
from data.loader import create_dataloader
from engine.distributed import Runtime, barrier, ddp_wrapper, distributed_runtime, launch_env, peer_failures_reported
from engine.launch import LaunchError, end_rank, launch, processes_to_start, reported_status
from engine.rng import seed_everything
from engine.execution import resolved_options
from engine.speed import apply_backend_settings, backend_settings_from
from engine.run_folder import prepare_folder
from engine.saver import Saver
from engine.stop import ForcedStop, TrainingStopped, exit_status, signal_name, stop_signals
from engine.train_state import TrainState
from models import create_model
from models.base_model import BaseModel
from options.base import Options
from options.configs import data_config, experiment_dir
from options.parse import format_options, parse_options
from options.train import resume_options
from options.validation import build_validation_hook, validation_split
from inference.val_fid import CACHE_FOLDER as VAL_FID_FOLDER
from reporting.logs import setup_logging
from reporting.reporter import build_reporter
from reporting.sink import display_outputs
from training.loop import BadDataStop, Run, broadcast_buffers, describe_run, run_epochs
from training.sizes import check_sample_sizes
from training.start import nothing_left, recorded_options, resume_label, start_state
from util.errors import OptionError, UserError

log = logging.getLogger("train")


def load_data(opt: Options, runtime: Runtime) -> tuple[Dataset, DataLoader]:
    if opt.use_demo:
        from datasets.make_demo import ensure_demo_dataset
        if runtime.is_main:
            ensure_demo_dataset(opt.dataroot)
        barrier(runtime)  # the other ranks read the demo set only once it is complete
    dataset = create_dataset(opt.dataset_mode, data_config(opt))
    # A shard set names its mode in its index: one made from `single` is known only once read.
    problem = targets_problem(dataset, f"--dataroot {opt.dataroot} (shards made from --dataset_mode single)")
    if problem:
        raise OptionError(problem)
    loader = create_dataloader(dataset, opt.batch_size, shuffle=not opt.serial_batches, num_workers=opt.num_threads,
                               seed=opt.seed, rank=runtime.rank, world_size=runtime.world_size,
                               pin_memory=runtime.device.type == "cuda")
    return dataset, loader


def train(opt: Options, runtime: Runtime) -> tuple[TrainState, BaseModel]:
    exp_dir = experiment_dir(opt)
    # Every check that can refuse the run comes before its folder is touched (run_folder.py).
    label = resume_label(opt, exp_dir)
    # The options the user did not type are the checkpoint's (and checked once they are known).
    recorded = recorded_options(opt, exp_dir, label) if label is not None else {}
    opt, adopted, changed, steered = resume_options(opt, recorded)
    dataset, loader = load_data(opt, runtime)
    check_sample_sizes(opt, dataset)   # before the networks are built: they are probed on shapes only
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
    if nothing_left(opt, state, resumed):
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
        return run_epochs(run, model, state)


def run_process(opt: Options) -> int:
    """Train in this process: alone, or as one rank of a job started by torchrun or --nproc.
    Returns the exit status."""
    where, is_main = "", True
    try:
        with peer_failures_reported(), distributed_runtime(opt.gpu_ids, opt.dist_timeout) as runtime:
            where, is_main = runtime.label, runtime.is_main
            setup_logging(is_main=runtime.is_main, verbose=opt.verbose)
            train(opt, runtime)
    except BadDataStop as stopped:   # every rank raises it, after their common save: said once
        if is_main:
            print(f"train.py: error{stopped.where}: {stopped}", file=sys.stderr)
        return reported_status()
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
        if not err.reported:
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
