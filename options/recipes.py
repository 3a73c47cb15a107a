"""Named flag sets for train.py (``--recipe NAME``).

A recipe is a list of ordinary train.py flags. They become the parser's defaults before the
command line is read a last time, so a flag the user types wins over the recipe's, and each
recipe flag goes through the same type checks and choices as a typed one. The chosen name is
an option like any other: saved in train_opt.txt and in every checkpoint.

The contents of each recipe live in ``RECIPES`` below and nowhere else.
"""
from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    flags: tuple[str, ...]   # train.py flags, as typed on a command line
    summary: str             # one line for --help
    measured: str            # where the measurement behind it is documented

    @property
    def command_line(self) -> str:
        return shlex.join(self.flags) or "none"


RECIPES: dict[str, Recipe] = {
    "paper": Recipe((), "the pix2pix paper's defaults: what you get without --recipe", "README: Quality"),
    "quality": Recipe(("--upsample", "nearest", "--ema_decay", "0.999"),
                      "the flags chosen for image quality, measured against the reference", "README: Quality"),
}
DEFAULT_RECIPE = "paper"


def recipes_help() -> str:
    lines = [f"  {name}: {r.summary}; flags: {r.command_line} (see {r.measured})" for name, r in RECIPES.items()]
    text = "a named set of flags, applied as defaults (a flag you type wins):\n" + "\n".join(lines) + "\n"
    # argparse %-formats help texts (for %(default)s): a literal % in a flag must be doubled.
    return text.replace("%", "%%")


def add_recipe_option(p: argparse.ArgumentParser) -> None:
    p.add_argument_group("recipe").add_argument("--recipe", default=DEFAULT_RECIPE, choices=list(RECIPES),
                                                help=recipes_help())

