"""Logging setup: INFO on the main process, warnings only elsewhere."""
from __future__ import annotations

import logging
import sys


def setup_logging(is_main: bool = True, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level if is_main else logging.WARNING, stream=sys.stdout,
                        format="%(message)s", force=True)
