"""The README's "Options at a glance" table, generated from the registries.

The names (and aliases) in each row are the registry's, in its order, so a new entry shows up
here without an edit; the words after a name are the README's prose about that entry, kept
below by name. tests/test_options_table.py checks that README.md holds exactly this output.

    python scripts/options_table.py   # prints the table's markdown
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from data.registry import DATASETS   # importing data.* fills it (data/__init__.py)
from data.transforms import PREPROCESS_MODES
from models import MODELS
from models.init import INITS
from models.losses import GAN_LOSSES
from models.networks import DISCRIMINATORS, GENERATORS
from models.norms import NORMS
from models.schedulers import LR_POLICIES
from options.recipes import RECIPES
from options.validation import BEST_METRICS, NO_BEST
from reporting.metrics import METRICS, SET
from util.registry import Registry


@dataclass(frozen=True)
class Row:
    option: str
    names: Registry[Any] | Sequence[str]
    # name -> what the README says right after it; ``{meta}`` fields come from the entry's meta
    notes: Mapping[str, str] = field(default_factory=dict)


ROWS: tuple[Row, ...] = (
    Row("--model", MODELS, {"test": " (generator only)"}),
    Row("--netG", GENERATORS, {
        "unet_128": " (sides must be multiples of 256 / 128)",
        "unet": " with `--num_downs N` (any depth from 1; multiples of 2^N; `unet_128` is N = 7, `unet_256` "
                "N = 8, and their checkpoints load either way; `tests/test_unet_depth.py`)",
        "resnet_6blocks": " (multiples of 4)",
        "local": " (pix2pixHD's coarse-to-fine generator: multiples of 2^(K + G1's downsamplings + 1), 64 by "
                 "default)",
        "global": " (its G1 alone, 32 by default; see High resolution)",
    }),
    Row("--netD", DISCRIMINATORS, {"basic": " (70x70 PatchGAN)", "n_layers": " (with `--n_layers_D`)",
                                   "pixel": " (1x1)", "multiscale": " (with `--num_D`)"}),
    Row("--norm", NORMS),
    Row("--gan_mode", GAN_LOSSES, {"wgangp": " (with a real gradient penalty, weight {gp_weight:g})"}),
    Row("--lr_policy", LR_POLICIES, {"linear": " (never trains an epoch at lr 0)"}),
    Row("--init_type", INITS, {"orthogonal": " (with `--init_gain`)"}),
    Row("--dataset_mode", DATASETS, {
        "paired": " (two folders)",
        "shards": " (tar shards from `datasets/make_shards.py`; `--shard_cache` for URLs)",
    }),
    Row("--recipe", list(RECIPES), {
        "paper": " (default: no flags)",
        "quality": " (`train.py --help` lists their flags; see [Recipes](#recipes---recipe))",
    }),
    Row("--best_metric", [*BEST_METRICS, NO_BEST], {
        **{e.name.lower(): f" ({e.obj.goal}{'; needs `--val_fid`' if e.obj.scope == SET else ''})" for e in METRICS},
        NO_BEST: " (keep no best checkpoint)",
    }),
    Row("--preprocess", PREPROCESS_MODES, {"pad": " (reflect, any size)"}),
)


def entries(row: Row) -> Iterable[tuple[str, tuple[str, ...], Mapping[str, Any]]]:
    """(name, aliases, meta) of every choice of the row, in the registry's order."""
    if isinstance(row.names, Registry):
        return [(e.name, e.aliases, e.meta) for e in row.names]
    return [(name, (), {}) for name in row.names]


def cell(row: Row) -> str:
    parts = []
    for name, aliases, meta in entries(row):
        alias = f" ({', '.join(f'`{a}`' for a in aliases)})" if aliases else ""
        parts.append(f"`{name}`{alias}{row.notes.get(name, '').format(**meta)}")
    return ", ".join(parts)


def options_table(rows: Sequence[Row] = ROWS) -> str:
    lines = ["| option | choices |", "|---|---|"]
    lines += [f"| `{row.option}` | {cell(row)} |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_table())
