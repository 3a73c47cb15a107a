"""Talking to a visdom server without ever holding up training: a quick probe before connecting,
a timeout on every request, and one warning (with the command that starts a server) when
there is none.
"""
from __future__ import annotations

import http.client
import importlib.util
import logging
import warnings
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

# Seconds to wait for a visdom server: short, because an absent server must not slow training.
PROBE_TIMEOUT_S = 1.5
# A live server answers a POST in milliseconds; this only bounds a server that hangs.
REQUEST_TIMEOUT_S = 10.0

VISDOM_INSTALL = "pip install 'setuptools<81' wheel && pip install --no-build-isolation visdom 'tornado<6.6'"


def visdom_server_command(port: int) -> str:
    return f"python -m visdom.server -p {port} -bind_local"


def probe_http(server: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> int | None:
    """HTTP status of ``GET /`` on the server, or None when nothing answers in time."""
    parsed = urlparse(server if "://" in server else f"http://{server}")
    host = parsed.hostname or "localhost"
    conn_cls = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=timeout)
    try:
        conn.request("GET", (parsed.path.rstrip("/") or "") + "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def visdom_client_class(visdom: ModuleType) -> type:
    """The stock visdom client with a timeout on every request (``REQUEST_TIMEOUT_S``).

    visdom has no public way to set one, so this overrides ``Visdom._handle_post``, the private
    method every request goes through; visdom's own docstring names it as the hook to
    override. tests/test_private_apis.py fails if a visdom release renames it, changes its
    signature or stops sending through it."""

    class _QuickVisdom(visdom.Visdom):
        def _handle_post(self, url: str, data: Any = None) -> str:
            return self.session.post(url, data=data or {}, timeout=REQUEST_TIMEOUT_S).text

    return _QuickVisdom


def visdom_installed() -> bool:
    return importlib.util.find_spec("visdom") is not None


def connect_visdom(server: str, port: int, env: str, look_again_s: float | None = None) -> Any | None:
    """A visdom client that raises instead of retrying, or None after one warning.
    ``look_again_s``: the caller looks for a server again this often (the warning says so)."""
    try:
        import visdom
    except ImportError:
        log.warning("visdom is not installed, so there is no live display (install it with: %s; "
                    "or pass --display_id 0)", VISDOM_INSTALL)
        return None

    status = probe_http(server, port)
    if status is None:
        later = (f", and the display starts once one answers there (looked for every {look_again_s:g} s)"
                 if look_again_s is not None else "")
        log.warning("no visdom server answers at %s:%d; training goes on without live display%s. "
                    "Start one with: %s   (or pass --display_id 0)",
                    server, port, later, visdom_server_command(port))
        return None
    if status != 200:
        hint = " (tornado 6.6 or newer makes visdom 0.2.4 answer 403: pip install 'tornado<6.6')" \
            if status == 403 else ""
        log.warning("the visdom server at %s:%d answered HTTP %d%s; training goes on without "
                    "live display", server, port, status, hint)
        return None

    # The client warns on every construction that the incoming socket (which we do not want:
    # it waits up to 5 s and we never receive events) is off.
    logging.getLogger("visdom").setLevel(logging.ERROR)
    try:
        # raise_exceptions: fail fast instead of printing tracebacks; no incoming socket: no
        # background thread and no reconnect loop.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # visdom's own logger.warn call
            return visdom_client_class(visdom)(server=server, port=port, env=env, raise_exceptions=True,
                                               use_incoming_socket=False)
    except Exception as err:  # the server vanished between probe and connect: still no crash
        log.warning("cannot talk to the visdom server at %s:%d (%s); training goes on without "
                    "live display", server, port, err)
        return None
