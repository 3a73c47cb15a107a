"""A local web page to draw a sketch (or upload an image) and see the generator's translation.

``python serve.py --name edges2shoes_pix2pix`` then open http://127.0.0.1:7860

The network and its test-time behaviour come from the same code as translate.py (the
checkpoint decides the architecture; --eval/--bn_eval/--dropout as there). The page binds
127.0.0.1 unless --host says otherwise and makes a public share link only with --share.
Needs requirements/serve.txt (gradio).
"""
from __future__ import annotations

# Before anything imports torch: how OpenMP threads wait (spin on a quiet machine, sleep on an
# oversubscribed one; util/omp_env.py), unless the user set a policy.
from util.omp_env import set_omp_wait_policy

set_omp_wait_policy()

import argparse
import errno
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Sequence

from inference.generator import load_generator, translator_for
from inference.sketch_page import PageSettings, SketchHandler, build_page
from options.base import Options, positive_int
from options.inference import add_fit_option, parse_inference_options
from reporting.logs import setup_logging
from util.argtypes import port_number
from util.errors import UserError

log = logging.getLogger("serve")


class ServeError(UserError, ValueError):
    """The page cannot be served; one line that names the option."""


def add_serve_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("page")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 makes the page reachable from other machines")
    g.add_argument("--port", type=port_number, default=7860, help="port to listen on")
    g.add_argument("--share", action="store_true",
                   help="also ask gradio for a public share link (goes through gradio's servers)")
    g.add_argument("--max_queue", type=positive_int, default=8,
                   help="requests that may wait; more are turned away with a message")
    g.add_argument("--max_side", type=positive_int, default=4096, help="inputs with a longer side are refused")
    g.add_argument("--canvas_size", type=positive_int, default=256,
                   help="side of the blank canvas, px (at most --max_side)")
    g.add_argument("--on_button", action="store_true",
                   help="translate when Translate is pressed instead of after every stroke (slow models)")
    g.add_argument("--save_inputs", type=Path, default=None,
                   help="keep every received canvas in this folder as input_NNNNN.png")
    add_fit_option(g)


def parse(argv: Sequence[str] | None) -> Options:
    return parse_inference_options(argv, "serve.py", "Serve a sketch-to-image page for a trained generator.",
                                   extend=add_serve_options)


def check_port_free(host: str, port: int) -> None:
    """Fail early, with the option's name, instead of gradio's multi-line search for a port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ServeError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the web server does: a port whose last connections are in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ServeError(f"--port {port}: already in use on {host}; choose another port") from None
            raise ServeError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None


def run(opt: Options) -> int:
    if opt.max_side > 4096:
        raise ServeError(f"--max_side {opt.max_side}: at most 4096")
    if opt.canvas_size > opt.max_side:
        # Checked before the page builds its blank canvas (side x side pixels), which a large
        # value would exhaust memory on; drawings from such a canvas would be refused anyway.
        raise ServeError(f"--canvas_size {opt.canvas_size}: at most --max_side ({opt.max_side})")
    check_port_free(opt.host, opt.port)
    loaded = load_generator(opt)
    translate = translator_for(loaded, fit=opt.fit)
    log.info("%s, --fit %s", loaded.describe(), translate.fit)
    translate.image_mode()   # the page shows 8-bit gray or RGB: refuse other channel counts now
    handler = SketchHandler(translate, opt.seed, opt.max_side, opt.save_inputs)
    settings = PageSettings(title=f"pix2pix: {opt.name}", canvas_size=opt.canvas_size, max_side=opt.max_side,
                            on_button=opt.on_button, max_queue=opt.max_queue, save_inputs=opt.save_inputs)
    page, launch_kwargs = build_page(handler, settings)
    log.info("serving on http://%s:%d (Ctrl+C stops)", opt.host, opt.port)
    page.launch(server_name=opt.host, server_port=opt.port, share=opt.share, inbrowser=False,
                max_file_size="64mb", quiet=True, **launch_kwargs)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    opt = parse(argv)
    setup_logging(verbose=opt.verbose)
    # A service manager stops the server with SIGTERM: taken as Ctrl+C, so that gradio closes its
    # server and the page's folder of results is removed (killed outright, it stayed in the temp
    # directory with up to 64 images).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(opt)
    except UserError as err:
        print(f"serve.py: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)   # main() may run inside another program (the tests)


if __name__ == "__main__":
    sys.exit(main())
