"""Shared pytest fixtures."""
from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Visualization fixtures (issue 6): a real visdom server and headless Chromium.
# ---------------------------------------------------------------------------------------------
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from util.omp_env import set_omp_wait_policy

# The drivers' OpenMP waiting rule for the test process too (before anything imports torch):
# on a loaded machine, spinning threads made a 32 px probe test take 42 s instead of 1.4 s.
set_omp_wait_policy()

# --amp auto (train.py's default) times bf16 against fp32 before training; under test the
# answer must not depend on the machine's load: the rule before issue 15 (bf16 where native).
# tests/test_speed_auto_amp.py measures with fake clocks instead; tests/test_execution_ddp.py runs it unpinned.
os.environ.setdefault("PIX2PIX_AMP_AUTO", "native")

from engine.launch import free_loopback_port  # noqa: E402  (imports torch: after the policy above)
from support.visdom_server import VisdomServer, VisdomServerError  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

@pytest.fixture
def unused_loopback_port() -> int:
    """A loopback port that nothing listened on a moment ago (for 'no server there' tests)."""
    return free_loopback_port()


@pytest.fixture(scope="session")
def visdom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of a visdom server on 127.0.0.1, started for the test session and stopped after it."""
    server = VisdomServer(tmp_path_factory.mktemp("visdom_env"))
    try:
        server.start(timeout_s=30)
    except VisdomServerError as err:
        pytest.fail(str(err))
    try:
        yield server.port
    finally:
        server.stop(grace_s=10)


def stop_server(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, ``grace_s`` seconds to exit, then SIGKILL: a server a fixture started is gone after."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class HeadlessChromium:
    """Renders local pages with headless Chromium, with flags that work as root and offline."""

    def __init__(self, binary: str, profile_root: Path) -> None:
        self.binary = binary
        self.profile_root = profile_root
        self._runs = 0

    def _run(self, page: Path, *mode: str, size: tuple[int, int]) -> str:
        self._runs += 1
        profile = self.profile_root / f"profile{self._runs}"  # a fresh profile: no cache
        command = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
            f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
            *mode, page.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
        return result.stdout

    def screenshot(self, page: Path, out_png: Path, size: tuple[int, int] = (1000, 1400)) -> Path:
        self._run(page, f"--screenshot={out_png}", size=size)
        if not out_png.is_file():
            raise RuntimeError(f"chromium wrote no screenshot for {page}")
        return out_png

    def dump_dom(self, page: Path) -> str:
        """The DOM after parsing, serialized: what the browser made of the page's markup."""
        return self._run(page, "--dump-dom", size=(1000, 1000))


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> HeadlessChromium:
    """Headless Chromium, a declared test requirement (scripts/install_browser.sh): a missing
    browser fails the tests instead of skipping them."""
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is not installed: run 'bash scripts/install_browser.sh'")
    return HeadlessChromium(CHROMIUM, tmp_path_factory.mktemp("chromium"))


# ------------------------------------------- end of issue 6 fixtures -------------------------
