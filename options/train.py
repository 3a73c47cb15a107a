"""Training options (on top of the base options)."""
from __future__ import annotations

import argparse

from models.losses import GAN_LOSSES
from models.schedulers import LR_POLICIES
from options.base import add_phase_option, choices_help, non_negative_int, positive_int
from options.highres import add_highres_options
from options.own_data import add_l1_options
from engine.distributed import DEFAULT_TIMEOUT_S
from reporting.reporter import add_display_options


def add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("display")
    g.add_argument("--display_freq", type=positive_int, default=400, help="show images every N samples")
    g.add_argument("--update_html_freq", type=positive_int, default=1000, help="save images to the HTML page every N samples")
    g.add_argument("--print_freq", type=positive_int, default=100, help="log losses every N samples")
    add_display_options(g)  # each display's own flags (reporting/sinks/)

    g = p.add_argument_group("saving and resuming")
    g.add_argument("--save_latest_freq", type=positive_int, default=5000, help="save 'latest' every N samples")
    g.add_argument("--save_epoch_freq", type=positive_int, default=5, help="save '<epoch>' every N epochs")
    g.add_argument("--save_by_iter", action="store_true", help="also keep each 'latest' save as iter_<N>")
    g.add_argument("--continue_train", nargs="?", const=True, default=False, type=continue_mode, metavar="auto",
                   help="resume from the checkpoint named by --epoch; 'auto': resume when the experiment folder "
                        "holds a checkpoint (the newest loadable one if that is damaged), else start fresh, "
                        "so that a scheduler or torchrun --max_restarts can rerun the same command")
    g.add_argument("--overwrite", action="store_true",
                   help="start a fresh run even though the experiment folder already holds checkpoints")
    g.add_argument("--epoch_count", type=positive_int, default=1,
                   help="number of the first epoch (when resuming an old checkpoint that carries no counters)")
    add_phase_option(g, "train")
    g.add_argument("--max_steps", type=non_negative_int, default=0,
                   help="stop after N optimization steps and save 'latest' (0: no limit)")

    g = p.add_argument_group("optimization")
    g.add_argument("--n_epochs", type=non_negative_int, default=100, help="epochs at the initial learning rate")
    g.add_argument("--n_epochs_decay", type=non_negative_int, default=100, help="epochs of decay after those")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    g.add_argument("--lr", type=float, default=0.0002, help="initial Adam learning rate")
    g.add_argument("--gan_mode", default="vanilla", choices=GAN_LOSSES.choices(), help=choices_help(GAN_LOSSES))
    g.add_argument("--pool_size", type=non_negative_int, default=0,
                   help="size of the buffer of past fakes shown to D (0: none, the pix2pix default)")
    g.add_argument("--lr_policy", default="linear", choices=LR_POLICIES.choices(), help=choices_help(LR_POLICIES))
    g.add_argument("--lr_decay_iters", type=positive_int, default=50, help="epochs between x0.1 steps (step policy)")
    g.add_argument("--lambda_L1", type=float, default=100.0, help="weight of the L1 loss")
    add_l1_options(g)

    g = p.add_argument_group("quality options (off by default)")
    g.add_argument("--lambda_feat", type=non_negative_float, default=0.0,
                   help="weight of discriminator feature matching (pix2pixHD uses 10; 0: off)")
    g.add_argument("--ema_decay", type=ema_decay, default=0.0,
                   help="keep a moving average of G's weights with this decay (e.g. 0.999) and use it "
                        "for inference (0: off)")

    add_highres_options(p)

    g = p.add_argument_group("several processes (DDP)")
    g.add_argument("--nproc", type=non_negative_int, default=0,
                   help="training processes to start on this machine (gloo on CPU, one per GPU with CUDA); "
                        "0: one per --gpu_ids entry. Not needed under torchrun, which starts them itself")
    g.add_argument("--dist_timeout", type=positive_float, default=DEFAULT_TIMEOUT_S,
                   help="seconds a process waits for the others in a collective before the job fails")


def continue_mode(text: str) -> str:
    if text != "auto":
        raise argparse.ArgumentTypeError(f"takes no value or 'auto', got '{text}'")
    return text


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def ema_decay(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or between 0 and 1 (e.g. 0.999), got {text}")
    return value
