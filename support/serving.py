"""Waiting for a server a test or benchmark started (visdom, serve.py) before talking to it."""
from __future__ import annotations

import time
import urllib.request
from typing import Any


def wait_until_serving(url: str, process: Any = None, timeout_s: float = 60, interval_s: float = 0.2) -> bool:
    """Poll a local server's ``url`` until it answers with a success status: True then; False
    if ``process`` (a Popen) exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()   # an error status raises (an OSError)
            return True
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                return False
            time.sleep(interval_s)
