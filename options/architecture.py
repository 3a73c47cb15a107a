"""The architecture flags, derived from the network specs (models/networks/spec.py).

Every field that carries a ``Flag`` becomes one option here, defined once for every command:
train.py and test.py get the generator's and the discriminator's, translate.py, serve.py and
export.py the generator's (there they only matter for reference .pth files: the checkpoints of
this project carry their spec). A new hyperparameter needs no edit here.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from models.networks import DISCRIMINATORS, GENERATORS
from models.networks.spec import SpecRegistry, flag_name, flag_of
from options.base import choices_help, positive_int
from util.argtypes import int_range


def _add_field(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    flag = flag_of(f)
    assert flag is not None
    option = f"--{flag_name(f)}"
    if flag.invert:
        group.add_argument(option, action="store_true", help=flag.help)
        return
    kwargs: dict[str, Any] = {"default": f.default, "help": flag.help}
    if flag.choices is not None:
        kwargs.update(choices=flag.choices.choices(), help=choices_help(flag.choices, flag.help))
    elif f.type in (int, "int"):
        plain = flag.minimum == 1 and flag.maximum is None
        kwargs["type"] = positive_int if plain else int_range(flag.minimum, flag.maximum)
    group.add_argument(option, **kwargs)


def _add_registry(group: argparse._ArgumentGroup, registry: SpecRegistry, default: str,
                  skip: set[str]) -> None:
    group.add_argument(f"--{registry.role}", default=default, choices=registry.choices(),
                       help=choices_help(registry))
    for f in registry.flag_fields():
        if flag_name(f) not in skip:
            _add_field(group, f)
            skip.add(flag_name(f))


def add_architecture_options(p: argparse.ArgumentParser, with_discriminator: bool = True,
                             title: str = "networks (their architecture: stored in every checkpoint)"
                             ) -> argparse._ArgumentGroup:
    """``--netG`` and every generator spec flag; with ``with_discriminator`` also ``--netD``
    and the discriminator's. A flag both share (``--norm``) is defined once."""
    group = p.add_argument_group(title)
    seen: set[str] = set()
    _add_registry(group, GENERATORS, "unet_256", seen)
    if with_discriminator:
        _add_registry(group, DISCRIMINATORS, "basic", seen)
    return group
