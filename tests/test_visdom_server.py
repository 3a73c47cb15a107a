"""support/visdom_server.py: a real visdom server on loopback, killed and started again at the
same address; a server that cannot start is one error that carries its log."""
from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from support.visdom_server import VisdomServer, VisdomServerError


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_killed_server_starts_again_on_the_same_port(tmp_path: Path) -> None:
    with VisdomServer(tmp_path / "home") as server:
        port = server.port
        assert answers(server.url)
        server.kill()
        assert server.proc is None and not answers(server.url)
        server.start()
        assert server.port == port and answers(server.url)
    assert not answers(server.url)   # leaving the block stopped it


def test_a_port_taken_by_another_program_gives_one_error_with_the_servers_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = VisdomServer(tmp_path / "home", port=taken.getsockname()[1])
        with pytest.raises(VisdomServerError, match=f"port {server.port} did not start") as err:
            server.start(timeout_s=30)
    assert "Address already in use" in str(err.value) or "Errno 98" in str(err.value)
    assert server.proc is None
