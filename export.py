"""Export a trained generator for deployment.

``python export.py --name facades_pix2pix --format onnx`` writes
``<checkpoints_dir>/<name>/<epoch>_net_G.onnx`` (or ``--output``): batch, height and width are
dynamic (height and width must be multiples of the size the network needs, recorded in the
file's metadata with the pre- and post-processing). The graph is frozen in eval mode without
dropout; batch norm uses the running statistics unless ``--bn_eval batch``.
"""
from __future__ import annotations

# Before anything imports torch: how OpenMP threads wait (spin on a quiet machine, sleep on an
# oversubscribed one; util/omp_env.py), unless the user set a policy.
from util.omp_env import set_omp_wait_policy

set_omp_wait_policy()

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from engine.checkpoint import generator_path, load_label
from inference.generator import LoadedGenerator, load_generator
from inference.onnx_model import OnnxError, OnnxSpec, export_onnx
from options.base import Options
from options.inference import parse_inference_options
from reporting.logs import setup_logging
from util.errors import UserError
from util.registry import Registry

log = logging.getLogger("export")


def _to_onnx(loaded: LoadedGenerator, path: Path) -> None:
    g = loaded.spec
    spec = OnnxSpec(g.input_nc, g.output_nc, g.size_multiple, loaded.translate_io, loaded.behaviour, g.name,
                    loaded.fit, loaded.min_side, loaded.opt.bn_eval)
    export_onnx(loaded.net.cpu(), spec, path)


# One entry per deployment format: (writer, file suffix).
FORMATS: Registry[tuple[Callable[[LoadedGenerator, Path], None], str]] = Registry("--format")
FORMATS.add("onnx", (_to_onnx, ".onnx"),
            help="ONNX via torch.onnx's dynamo exporter; run it with onnxruntime or translate.py --onnx")


def add_export_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("export")
    g.add_argument("--format", default="onnx", choices=FORMATS.choices(),
                   help="\n".join(f"{e.name}: {e.help}" for e in FORMATS))
    g.add_argument("--output", type=Path, default=None,
                   help="file to write (default: <checkpoints_dir>/<name>/<epoch>_net_G.<format>); an existing "
                        "file is replaced only once the new one is complete")


def parse(argv: Sequence[str] | None) -> Options:
    # Frozen: eval mode, no dropout; --bn_eval picks the batch norm statistics.
    return parse_inference_options(argv, "export.py", "Export a trained generator (ONNX).",
                                   extend=add_export_options, frozen=True)


def run(opt: Options) -> Path:
    writer, suffix = FORMATS.get(opt.format)
    path = opt.output or generator_path(Path(opt.checkpoints_dir) / opt.name, load_label(opt), suffix)
    if path.exists() and path.is_dir():
        raise OnnxError(f"{path}: --output is a folder; give a file name")
    loaded = load_generator(opt)
    log.info("%s", loaded.describe())
    writer(loaded, path)
    log.info("wrote %s", path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    opt = parse(argv)
    setup_logging(verbose=opt.verbose)
    try:
        run(opt)
    except UserError as err:
        print(f"export.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
