"""Options for reading tar shards (``--dataset_mode shards``, data/shards.py)."""
from __future__ import annotations

import argparse


def add_shard_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("shards")
    g.add_argument("--shard_cache", default=None,
                   help="with --dataset_mode shards and a URL --dataroot: the folder remote shards are "
                        "downloaded to, each once (default: pix2pix_shards_<uid> in the temp folder)")
