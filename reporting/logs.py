"""Logging setup: INFO on the main process, warnings only elsewhere."""
from __future__ import annotations

import logging
import sys

_HANDLER = "pix2pix-console"


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of each record, so a handler made while
    stdout was redirected (a test harness, a notebook cell) never writes to a closed stream."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(is_main: bool = True, verbose: bool = False) -> None:
    """Replace our own console handler (and only it, so handlers that others installed, such
    as a test harness's, keep working when a driver's main() runs more than once)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER:
            root.removeHandler(handler)
    handler = _StdoutHandler()
    handler.set_name(_HANDLER)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    if not is_main:
        root.setLevel(logging.WARNING)
    else:
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
