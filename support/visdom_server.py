"""A visdom server on loopback, started and stopped from Python: what the tests and the fault
benchmark train against.

``python -m visdom.server`` downloads its page's scripts at every start and fails without the
internet; ``visdom.server.run_server.main`` takes the same flags and skips the download. The
JSON API that train.py's display uses works either way; the browser page needs the scripts,
which a plain ``python -m visdom.server`` fetches once on a connected machine.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

from engine.launch import free_loopback_port
from support.serving import wait_until_serving
from util.errors import UserError

SERVER_CODE = ("import sys; from visdom.server.run_server import main; "
               "sys.argv = ['visdom'] + sys.argv[1:]; main()")


class VisdomServerError(UserError, RuntimeError):
    """The server did not answer within the time given; the message ends with its log."""


class VisdomServer:
    """A visdom server on 127.0.0.1 with its files under ``home``; the port is chosen once, so
    the server can be killed and started again at the same address."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = Path(home)
        self.port = port or free_loopback_port()
        self.log_path = self.home / "server.log"
        self.proc: subprocess.Popen | None = None
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER_CODE, "-port", str(self.port), "-bind_local",
                 "-env_path", f"{self.home}/"], cwd=self.home, stdout=log, stderr=subprocess.STDOUT)
        if not wait_until_serving(self.url, self.proc, timeout_s=timeout_s):
            self.kill()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise VisdomServerError(f"the visdom server on port {self.port} did not start:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: the server goes without a word, as in a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, ``grace_s`` seconds to exit, then SIGKILL."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> "VisdomServer":
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
