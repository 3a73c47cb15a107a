"""Options for reading tar shards (``--dataset_mode shards``, data/shards.py)."""
from __future__ import annotations

import argparse


def add_shard_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("shards")
    g.add_argument("--shard_cache", default=None,
                   help="with --dataset_mode shards: the folder remote shards are downloaded to, each once "
                        "and checked against the index, and local ones linked from; a writable folder, "
                        "created if need be (default: pix2pix_shards_<uid> in the temp folder)")
