"""Training options (on top of the base options), and which of them a resume takes from the
checkpoint it resumes."""
from __future__ import annotations

import argparse
from functools import cache
from typing import Any, Callable, Mapping

from models.losses import GAN_LOSSES
from models.schedulers import LR_POLICIES
from options.base import Options, add_phase_option, choices_help, non_negative_int, positive_int
from options.highres import add_highres_options
from options.own_data import add_l1_options
from options.recipes import RECIPES
from options.speed import add_speed_options
from options.validate import first_problem
from options.validation import add_validation_options
from engine.checkpoint import options_dict
from engine.distributed import DEFAULT_TIMEOUT_S
from reporting.reporter import add_display_options
from util.errors import OptionError


def add_train_options(p: argparse.ArgumentParser) -> None:
    _add_display_group(p)

    g = p.add_argument_group("saving and resuming")
    g.add_argument("--save_latest_freq", type=positive_int, default=5000, help="save 'latest' every N samples")
    g.add_argument("--save_epoch_freq", type=positive_int, default=5, help="save '<epoch>' every N epochs")
    g.add_argument("--save_by_iter", action="store_true", help="also keep each 'latest' save as iter_<N>")
    g.add_argument("--keep_checkpoints", type=non_negative_int, default=0, metavar="N",
                   help="keep only the N newest '<epoch>' saves (and, with --save_by_iter, the N newest iter_<N>), "
                        "removing older ones once a new one is written; 'latest' and 'best' always stay "
                        "(0: keep every save, as the reference does)")
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


def _add_display_group(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("display")
    g.add_argument("--display_freq", type=positive_int, default=400, help="show images every N samples")
    g.add_argument("--update_html_freq", type=positive_int, default=1000, help="save images to the HTML page every N samples")
    g.add_argument("--print_freq", type=positive_int, default=100, help="log losses every N samples")
    add_display_options(g)  # each display's own flags (reporting/sinks/)


def _names_of(add: Callable[[argparse.ArgumentParser], None]) -> set[str]:
    parser = argparse.ArgumentParser()
    add(parser)
    return set(vars(parser.parse_args([])))


@cache
def resume_exempt() -> frozenset[str]:
    """Options a resume neither takes from its checkpoint nor warns about. They concern only
    this process, not what the run computes: where things are and which machine runs it, what
    it shows and how often it saves, where this process stops, and the speed options (each
    keeps what the model learns within the tolerances of options/speed.py, and suits one
    machine, not the run). ``amp`` has its own rule on a resume and is left to it (the
    checkpoint's precision record, engine/execution.py). The rest are set by the parser."""
    process = {"name", "suffix", "checkpoints_dir", "dataroot", "shard_cache", "gpu_ids", "nproc", "dist_timeout",
               "num_threads", "verbose", "display_winsize", "save_latest_freq", "save_epoch_freq", "save_by_iter",
               "keep_checkpoints", "continue_train", "overwrite", "epoch", "load_iter", "max_steps"}
    own_rule = {"amp"}
    parser_set = {"explicit", "is_train", "use_demo", "netG_from_checkpoint"}
    return frozenset(process | own_rule | parser_set | _names_of(_add_display_group)
                     | _names_of(add_speed_options))


# Options that decide only whether a run may read its data, never what it computes from it (a
# refusal, or the same run): a resume takes them from its checkpoint where untyped, so that a run
# that needed its limit raised goes on, and a typed one is no change to report.
ADMISSION = frozenset({"max_image_pixels"})


def recipe_options() -> set[str]:
    """The options some recipe sets (each recipe flag is ``--<option name>``)."""
    return {flag[2:] for recipe in RECIPES.values() for flag in recipe.flags if flag.startswith("--")}


@cache
def validation_settings() -> frozenset[str]:
    """Options that steer validation and the best checkpoint only (how often, on which images,
    by which metric, G's test-time behaviour): training computes the same without them. A
    resume takes them from its checkpoint like the rest, but a typed change is no reason to say
    the run differs from an uninterrupted one."""
    return frozenset(_names_of(add_validation_options))


def resume_options(opt: Options, saved: Mapping[str, Any]) -> tuple[Options, list[str], list[str], list[str]]:
    """The options a resume trains with: every option the user did not type is the one the
    checkpoint recorded (``saved``), so that a plain ``--continue_train`` goes on with the run as
    it was (an untyped ``--n_epochs`` would otherwise silently take the default and stretch the
    schedule). Returns them with the options taken from the checkpoint, the typed ones that
    differ from it and change training, and the typed validation settings that differ
    (:func:`validation_settings`), each as ``"name old -> new"``. Options the checkpoint does not
    know (added since it was written) keep their values. ``saved`` is empty for a run that
    starts fresh; the cross-option checks run here in every case (parsing defers them under
    --continue_train)."""
    typed, now = set(getattr(opt, "explicit", ())), options_dict(opt)
    if "recipe" in typed:   # a typed recipe is a deliberate change: its flags (or the defaults) apply
        typed |= recipe_options()
    exempt, steering = resume_exempt(), validation_settings()
    taken: dict[str, Any] = {}
    adopted, changed, steered = [], [], []
    for key in sorted(now):
        if key in exempt or key not in saved or saved[key] == now[key]:
            continue
        if key == "epoch_count" and key in typed:
            # The checkpoint records where it stopped; a second starting epoch would shift its
            # schedule (linear at epoch 7 + 2 epochs done: a negative rate).
            raise OptionError(f"--epoch_count {now[key]}: this checkpoint records its own epoch and step, and its "
                              f"schedule counts from --epoch_count {saved[key]}; leave --epoch_count out (it is for "
                              "the reference's files, which record no counters)")
        if key in typed:
            if key not in ADMISSION:
                (steered if key in steering else changed).append(f"{key} {saved[key]} -> {now[key]}")
        elif key != "recipe":   # left out, the checkpoint's recipe is an error (engine/checkpoint/resume.py)
            taken[key] = saved[key]
            adopted.append(f"{key} {saved[key]}")
    merged = Options(**{**opt.as_dict(), **taken}) if taken else opt
    problem = first_problem(merged)   # deferred from parsing under --continue_train (options/parse.py)
    if problem:
        source = (f" (a resume takes the options you do not type from its checkpoint: {', '.join(adopted)})"
                  if adopted else "")
        raise OptionError(problem + source)
    return (merged.freeze() if taken else opt), adopted, changed, steered


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
