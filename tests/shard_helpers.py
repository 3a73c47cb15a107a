"""Shard sets made from test folders, and a loopback HTTP server to read them from."""
from __future__ import annotations

import contextlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Sequence

from data.shard_format import ShardLimits
from datasets.make_shards import make_shards


def make_shard_set(source: Path, out: Path, mode: str = "aligned", phases: Sequence[str] = ("train",),
                   samples_per_shard: int = 3) -> Path:
    """``source`` written as shards of at most ``samples_per_shard`` samples (several shards)."""
    make_shards(source, mode, out, phases, ShardLimits(max_samples=samples_per_shard, max_bytes=2**30))
    return out


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:   # keep test output clean
        pass


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """``folder`` served on 127.0.0.1 (a free port) for the duration; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
