"""support.serving.wait_until_serving, the one poll that tests and benchmarks use before talking to
a server they started: a real HTTP server as the oracle for "answers", a dead process and an
empty port for the two ways it must give up."""
from __future__ import annotations

import subprocess
import sys
import time

from engine.launch import free_loopback_port
from support.serving import wait_until_serving


def test_true_once_a_real_server_answers_false_when_its_process_is_gone():
    port = free_loopback_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_serving(f"http://127.0.0.1:{port}/", server, timeout_s=60, interval_s=0.1)
    finally:
        server.kill()
        server.wait()
    start = time.monotonic()
    assert not wait_until_serving(f"http://127.0.0.1:{port}/", server, timeout_s=60)
    assert time.monotonic() - start < 5   # the dead process ends the wait, not the timeout


def test_false_after_the_timeout_when_nothing_listens():
    start = time.monotonic()
    assert not wait_until_serving(f"http://127.0.0.1:{free_loopback_port()}/", None, timeout_s=0.5, interval_s=0.1)
    assert 0.5 <= time.monotonic() - start < 5
