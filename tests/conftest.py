"""Shared pytest fixtures."""
from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Visualization fixtures (issue 6): a real visdom server and headless Chromium.
# ---------------------------------------------------------------------------------------------
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"

# run_server.main() parses the usual flags but, unlike `python -m visdom.server`, never calls
# download_scripts(), which needs the internet. The JSON API works without the JS assets.
_VISDOM_SERVER_CODE = (
    "import sys; from visdom.server.run_server import main; "
    "sys.argv = ['visdom'] + sys.argv[1:]; main()"
)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def unused_loopback_port() -> int:
    """A loopback port that nothing listened on a moment ago (for 'no server there' tests)."""
    return free_loopback_port()


@pytest.fixture(scope="session")
def visdom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of a visdom server on 127.0.0.1, started for the test session and killed after it."""
    if importlib.util.find_spec("visdom") is None:
        pytest.skip("visdom is not installed")
    port = free_loopback_port()
    env_path = tmp_path_factory.mktemp("visdom_env")
    log_path = env_path / "server.log"
    with log_path.open("wb") as server_log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _VISDOM_SERVER_CODE, "-port", str(port), "-bind_local",
             "-env_path", f"{env_path}/"],
            stdout=server_log, stderr=subprocess.STDOUT, cwd=env_path)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the visdom server did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary for headless screenshots; skips the test where there is none."""
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
        return found
    return CHROMIUM


def chromium_screenshot(binary: str, page: Path, out_png: Path, profile_dir: Path,
                        size: tuple[int, int] = (1000, 1400)) -> Path:
    """Render a local page headlessly to a PNG (flags that work as root, with no network)."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", "--allow-file-access-from-files",
        f"--user-data-dir={profile_dir}", f"--screenshot={out_png}",
        f"--window-size={size[0]},{size[1]}", page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not out_png.is_file():
        raise RuntimeError(f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return out_png
# ------------------------------------------- end of issue 6 fixtures -------------------------
