"""Train pix2pix: ``python train.py`` (demo data) or ``python train.py --dataroot ... --name ...``.

Several processes (DDP): ``torchrun --nproc_per_node=N train.py ...``, or ``python train.py
--nproc N`` / ``--gpu_ids 0,1`` on one machine; see docs/distributed.md.
"""
from __future__ import annotations

# Before anything imports torch: OpenMP threads that spin while waiting collapse on small or
# shared CPUs (measured 16x slower), so prefer passive waiting unless the user set a policy.
from util.omp_env import prefer_passive_omp_wait

prefer_passive_omp_wait()

import logging
import shutil
import sys
import time
from typing import Sequence

import torch
from torch import nn

from data import DataError, create_dataset
from data.loader import create_dataloader, set_loader_epoch
from models import create_model
from models.base_model import BaseModel
from models.sync_batchnorm import SyncBatchNorm2d
from options.base import Options
from options.configs import data_config, display_config, experiment_dir
from options.parse import format_options, parse_options
from engine.checkpoint import CheckpointError
from engine.distributed import (DistributedError, Runtime, barrier, ddp_wrapper, distributed_runtime, first_line,
                              gather_to_all, is_peer_failure, launch_env, mean_across_ranks, unwrap)
from engine.launch import LaunchError, launch, processes_to_start
from reporting.logs import setup_logging
from reporting.loss_log import LossLog
from reporting.progress import EpochProgress
from engine.rng import capture_rng_state, seed_everything
from engine.amp_auto import choose_auto_amp
from engine.speed import SpeedError, apply_backend_settings, backend_settings_from
from reporting.tensorboard_logger import TensorBoardMissingError
from engine.train_state import (DivergedError, TrainState, check_finite, crossed, existing_checkpoints, load_label,
                           resume_training, save_training)
from reporting.visualizer import Visualizer

log = logging.getLogger("train")

# Errors a user can act on: reported as one line (per process), no traceback.
USER_ERRORS = (DataError, CheckpointError, DivergedError, TensorBoardMissingError, DistributedError, SpeedError)


def broadcast_buffers(net: nn.Module) -> bool:
    """Only buffers that drift apart between processes need rank 0's copy at every forward:
    plain batch norm's running statistics. Synced BN keeps them equal everywhere, and instance
    or group norm have none."""
    has_buffers = any(True for _ in net.buffers())
    return has_buffers and not any(isinstance(m, SyncBatchNorm2d) for m in net.modules())


def train(opt: Options, runtime: Runtime) -> tuple[TrainState, BaseModel]:
    exp_dir = experiment_dir(opt)
    if opt.use_demo:
        from datasets.make_demo import ensure_demo_dataset
        if runtime.is_main:
            ensure_demo_dataset(opt.dataroot)
        barrier(runtime)  # the other ranks read the demo set only once it is complete
    dataset = create_dataset(opt.dataset_mode, data_config(opt))
    loader = create_dataloader(dataset, opt.batch_size, shuffle=not opt.serial_batches, num_workers=opt.num_threads,
                               seed=opt.seed, rank=runtime.rank, world_size=runtime.world_size,
                               pin_memory=runtime.device.type == "cuda")
    apply_backend_settings(backend_settings_from(opt), runtime.device)
    seed_everything(opt.seed)  # the same initial weights on every process
    model = create_model(opt, runtime)
    model.amp = choose_auto_amp(opt, model.nets, model.amp, runtime.device)  # --amp auto: measured, cached

    state = TrainState(epoch=opt.epoch_count)
    if opt.continue_train:
        state = resume_training(exp_dir, load_label(opt), model, opt, runtime.rank, runtime.world_size)
        log.info("resumed from %s at epoch %d, step %d", load_label(opt), state.epoch, state.step)
    elif existing_checkpoints(exp_dir) and not opt.overwrite:
        raise CheckpointError(f"{exp_dir} already holds checkpoints; pass --continue_train to resume, "
                              "--overwrite to start again, or choose another --name")
    else:
        # Dropout and the loader differ per process; the weights above do not.
        seed_everything(opt.seed + runtime.rank)
    # Each network in its own DDP (a no-op in one process); checkpoints are taken from the
    # unwrapped modules, so they load in runs of any size.
    model.wrap_networks(ddp_wrapper(runtime, broadcast_buffers))
    if runtime.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        if not opt.continue_train:
            # A fresh run (the folder held no checkpoints, or --overwrite): start a new loss log
            # and page rather than appending to a previous run's.
            (exp_dir / "loss_log.jsonl").unlink(missing_ok=True)
            shutil.rmtree(exp_dir / "web", ignore_errors=True)
        (exp_dir / "train_opt.txt").write_text(format_options(opt))
        log.info("%d training images, %d steps per epoch, %d process(es) x batch %d", len(dataset), len(loader),
                 runtime.world_size, opt.batch_size)
        for line in model.describe():
            log.info(line)
        for name, net in model.nets.items():
            log.debug("net %s:\n%s", name, unwrap(net))  # --verbose: the whole structure
    visualizer = Visualizer(display_config(opt), enabled=runtime.is_main)
    loss_log = LossLog(exp_dir / "loss_log.jsonl") if runtime.is_main else None
    world, batch = runtime.world_size, opt.batch_size
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    samples_per_epoch = loader.sampler.num_samples * world

    def save(label: str, losses: dict[str, torch.Tensor]) -> None:
        # Averaged first, so that every rank agrees on whether training diverged.
        check_finite(mean_across_ranks(losses, runtime), state.step)
        rng_per_rank = gather_to_all(capture_rng_state(), runtime)
        if runtime.is_main:
            save_training(exp_dir, label, model, state, opt, rng_per_rank)
        barrier(runtime)

    losses: dict[str, torch.Tensor] = {}
    try:
        while state.epoch <= last_epoch:
            set_loader_epoch(loader, state.epoch, start_index=state.epoch_samples)
            epoch_loss_sum, epoch_steps = torch.zeros((), device=runtime.device), 0
            model.train()
            t_data = time.perf_counter()
            bar = EpochProgress(len(loader), state.epoch, last_epoch, enabled=runtime.is_main)
            for batch_data in loader:
                before = state.samples
                t_step = time.perf_counter()
                model.set_input(batch_data)
                losses = model.train_step()
                state.advance(batch, world)
                epoch_loss_sum += losses["G_L1"] + losses["G_GAN"]
                epoch_steps += 1
                bar.update()

                # All ranks cross the same thresholds: state.samples counts the global batch.
                if crossed(before, state.samples, opt.print_freq):
                    shown = mean_across_ranks(losses, runtime)  # the step's only sync (host and ranks)
                    values = {k: float(v) for k, v in shown.items()}
                    check_finite(shown, state.step)
                    seconds = (time.perf_counter() - t_step) / batch
                    record = {"epoch": state.epoch, "epoch_iter": state.epoch_samples * world, "step": state.step,
                              "epoch_frac": state.epoch - 1 + state.epoch_samples * world / max(samples_per_epoch, 1),
                              "lr": model.current_lr(), "time_per_sample": seconds,
                              "data_time": t_step - t_data, "losses": values}
                    if loss_log is not None:
                        loss_log.append(record)
                        log.info("(epoch %d, step %d, %.3fs/sample) %s", state.epoch, state.step, seconds,
                                 " ".join(f"{k}: {v:.3f}" for k, v in values.items()))
                    visualizer.plot_current_losses(record["epoch_frac"], values, step=state.step)
                    bar.show_losses(values)
                if crossed(before, state.samples, opt.display_freq):
                    visualizer.display_current_results(model.current_visuals(), state.epoch, state.step,
                                                       save_result=crossed(before, state.samples, opt.update_html_freq))
                    barrier(runtime)
                if crossed(before, state.samples, opt.save_latest_freq):
                    save("latest", losses)
                    if opt.save_by_iter:
                        save(f"iter_{state.samples}", losses)
                if opt.max_steps and state.step >= opt.max_steps:
                    bar.close()
                    save("latest", losses)
                    log.info("stopped after --max_steps %d; resume with --continue_train", opt.max_steps)
                    return state, model
                t_data = time.perf_counter()
            bar.close()

            # The plateau policy needs one metric for all ranks, or their learning rates drift apart.
            epoch_mean = {"loss": epoch_loss_sum / max(epoch_steps, 1)}
            lr = model.step_schedulers(float(mean_across_ranks(epoch_mean, runtime)["loss"]))
            finished = state.epoch
            state.next_epoch()
            log.info("end of epoch %d / %d, learning rate now %.7f", finished, last_epoch, lr)
            if finished % opt.save_epoch_freq == 0 or finished == last_epoch:
                save("latest", losses)
                save(str(finished), losses)
        # The last page shows the final state even when no display step fell on the end.
        if losses:
            visualizer.display_current_results(model.current_visuals(), state.epoch - 1, state.step, save_result=True)
        return state, model
    finally:
        visualizer.close()
        if loss_log is not None:
            loss_log.close()


def run_process(opt: Options) -> int:
    """Train in this process: alone, or as one rank of a job started by torchrun or --nproc.
    Returns the exit status."""
    where = ""
    try:
        with distributed_runtime(opt.gpu_ids, opt.dist_timeout) as runtime:
            where = runtime.label
            setup_logging(is_main=runtime.is_main, verbose=opt.verbose)
            train(opt, runtime)
    except USER_ERRORS as err:
        print(f"train.py: error{where}: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:
        if not is_peer_failure(err):
            raise  # a bug: its traceback is what one needs
        # A peer died or stalled: this rank's collective failed or timed out (--dist_timeout).
        print(f"train.py: error{where}: lost contact with the other processes ({first_line(err)})",
              file=sys.stderr)
        return 1
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
        print(f"train.py: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("train.py: interrupted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
