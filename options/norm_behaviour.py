"""The norm-behaviour options of every command that runs G (test.py, translate.py, serve.py,
export.py): one group, so that a flag added here reaches all of them."""
from __future__ import annotations

import argparse
from typing import Sequence

from models.batchnorm import BN_EVAL_MODES

def standalone_bn_modes() -> list[str]:
    """Batch norm modes that need nothing but the image itself (translate, serve, export offer these)."""
    return [e.name for e in BN_EVAL_MODES if not e.meta["needs_training_data"]]


def add_norm_behaviour_options(p: argparse.ArgumentParser, bn_modes: Sequence[str],
                               frozen: bool = False) -> argparse._ArgumentGroup:
    """--eval, --bn_eval and --dropout: how norm layers and dropout behave when G runs.

    ``frozen`` is for a graph written once (export.py): it always runs in eval mode without
    dropout (random dropout cannot be replayed by another runtime), so only --bn_eval is left
    to choose. Returns the group, for a command's own additions."""
    g = p.add_argument_group("norm and dropout behaviour at test time")
    if not frozen:
        g.add_argument("--eval", action="store_true",
                       help="eval mode: norm layers per --bn_eval (running statistics by default) and no "
                            "dropout. Without it G runs as in the paper: batch statistics and dropout on")
    lead = ("how batch norm layers normalize in the exported graph:" if frozen
            else "with --eval, how batch norm layers normalize:")
    g.add_argument("--bn_eval", default="running", choices=list(bn_modes), help=bn_modes_help(bn_modes, lead))
    if not frozen:
        g.add_argument("--dropout", default=None, choices=["on", "off"],
                       help="dropout at test time; default: on without --eval (paper), off with --eval")
    g.add_argument("--no_ema", action="store_true",
                   help="use G's own weights even when training kept a moving average of them (--ema_decay), "
                        "which is used by default")
    return g


def bn_modes_help(bn_modes: Sequence[str], lead: str) -> str:
    """The help of the modes this command offers only (translate.py has no training data for
    "precise"), in the registry's words."""
    entries = "\n".join(f"  {name}: {BN_EVAL_MODES.entry(name).help}" for name in bn_modes)
    return f"{lead}\n{entries}\n"
