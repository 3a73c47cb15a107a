"""Options shared by training and testing.

Flags and defaults follow the well-known pix2pix command line so existing commands work
unchanged. Choices come from the registries, so ``--help`` lists exactly what exists.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import NoReturn

from data import DATASETS, PREPROCESS_MODES
from data.image_io import DEFAULT_MAX_IMAGE_PIXELS
from models import MODELS
from models.init import INITS
from options.numbers import non_negative_int, positive_int  # noqa: F401 - re-exported: the options import them from here
from util.registry import Registry


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad command line as one line (not the whole usage block) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class Options(argparse.Namespace):
    """Parsed options: read-only once parsing is done."""

    def freeze(self) -> "Options":
        object.__setattr__(self, "_frozen", True)
        return self

    def __setattr__(self, key: str, value: object) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(f"options are read-only after parsing (tried to set {key})")
        super().__setattr__(key, value)

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


_SAYS_DEFAULT = re.compile(r"\bdefault:", re.IGNORECASE)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, and keeps the line breaks of help texts that have them, so that each
    registered choice gets a line of its own."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # A help text that says its default in words ("default: all") shows no second one.
        if action.help and _SAYS_DEFAULT.search(action.help):
            return action.help
        return super()._get_help_string(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        for part in text.splitlines():
            lines.extend(super()._split_lines(part, width) or [""])
        return lines


def choices_help(registry: Registry, lead: str = "") -> str:
    entries = "\n".join(f"  {e.name}: {e.help}" if e.help else f"  {e.name}" for e in registry)
    aliases = [a for e in registry for a in e.aliases]
    note = f"\n  (also accepted: {', '.join(aliases)})" if aliases else ""
    return f"{lead or 'one of:'}\n{entries}{note}\n"


def gpu_list(text: str) -> list[int]:
    """'0,1' -> [0, 1]; '-1' -> [] (CPU)."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated GPU numbers or -1, got '{text}'") from None
    return [i for i in ids if i >= 0]


def default_loader_workers() -> int:
    """The CPUs this process may use, at most 4: more loader workers than CPUs only make
    torch warn and the workers compete with the training threads."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return min(4, usable)


def add_experiment_options(g: argparse._ArgumentGroup, name_default: str | None = "experiment_name",
                           name_required: bool = False) -> None:
    """Which experiment, on which device, with which seed: every command's first flags."""
    g.add_argument("--name", default=name_default, required=name_required,
                   help="experiment name: the folder under --checkpoints_dir with its checkpoints and pages")
    g.add_argument("--checkpoints_dir", default="./checkpoints", help="where experiment folders live")
    g.add_argument("--gpu_ids", type=gpu_list, default=None,
                   help="GPU ids, e.g. 0 or 0,1 (several start one training process per GPU); -1 for CPU. "
                        "Default: 0 when a GPU is present, else -1")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed (CPU runs are reproducible with it; at test time, the dropout noise)")
    g.add_argument("--verbose", action="store_true", help="print network structures and debug logs")


def add_model_option(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--model", default="pix2pix", choices=MODELS.choices(), help=choices_help(MODELS))


def add_load_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--epoch", default="latest",
                   help="which checkpoint to load: latest, best (--best_metric) or an epoch number")
    g.add_argument("--load_iter", type=non_negative_int, default=0,
                   help="if > 0, load the checkpoint saved at this iteration (iter_N) instead of --epoch")


def add_model_suffix_option(g: argparse._ArgumentGroup) -> None:
    # The reference's test model flag, so that its documented commands run unchanged.
    g.add_argument("--model_suffix", default="",
                   help="load the reference implementation's generator file <epoch>_net_G<suffix>.pth, "
                        "e.g. _A for a CycleGAN's latest_net_G_A.pth")


def add_phase_option(g: argparse._ArgumentGroup, default: str) -> None:
    g.add_argument("--phase", default=default, help="subfolder of --dataroot to read")


def add_skip_bad_images_option(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--skip_bad_images", action="store_true",
                   help="warn about and skip unreadable images instead of stopping")


def add_max_image_pixels_option(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max_image_pixels", type=non_negative_int, default=DEFAULT_MAX_IMAGE_PIXELS,
                   help="refuse images of more pixels, as decompression bombs (default: Pillow's %(default)s, "
                        "about 9459 x 9459); 0: no limit")


def add_base_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("experiment")
    g.add_argument("--dataroot", default=None,
                   help="folder with train/, val/, test/ subfolders; omit it to use the built-in demo set")
    add_experiment_options(g)
    add_model_option(g)
    g.add_argument("--suffix", default="",
                   help="appended to --name, formatted with the options, e.g. {netG}_size{load_size}")

    g = p.add_argument_group("initialization")
    g.add_argument("--init_type", default="normal", choices=INITS.choices(), help=choices_help(INITS))
    g.add_argument("--init_gain", type=float, default=0.02, help="scale for normal, xavier and orthogonal init")

    g = p.add_argument_group("data")
    g.add_argument("--dataset_mode", default="aligned", choices=DATASETS.choices(), help=choices_help(DATASETS))
    g.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="AtoB or BtoA (swap A and B)")
    g.add_argument("--serial_batches", action="store_true", help="take images in order instead of shuffling")
    g.add_argument("--num_threads", type=non_negative_int, default=default_loader_workers(),
                   help="data loader worker processes (default: the usable CPUs, at most 4)")
    g.add_argument("--batch_size", type=positive_int, default=1, help="images per batch (per process under DDP)")
    g.add_argument("--load_size", type=positive_int, default=None,
                   help="scale images to this size (train default 286; test default: --crop_size)")
    g.add_argument("--crop_size", type=positive_int, default=256, help="then crop to this size")
    g.add_argument("--max_dataset_size", type=positive_int, default=None,
                   help="use at most this many images (default: all)")
    g.add_argument("--preprocess", default="resize_and_crop", choices=PREPROCESS_MODES.choices(),
                   help=choices_help(PREPROCESS_MODES))
    g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
    g.add_argument("--display_winsize", type=positive_int, default=256, help="display size of images on pages")
    g.add_argument("--cache_dataset", action="store_true",
                   help="decode every image once and keep it in memory (small sets such as facades)")
    add_max_image_pixels_option(g)
    add_skip_bad_images_option(g)

    add_load_options(p.add_argument_group("loading"))
