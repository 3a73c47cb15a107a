"""More bad inputs, table-driven as in tests/test_bad_inputs.py: test.py and translate.py inputs,
images of different sizes in one batch, ONNX files, and every training refusal again as a
fresh run (no --continue_train), which must not create its experiment folder either.

Each row: a non-zero exit, one line on stderr naming the culprit, no traceback, and the
checkpoints folder (experiments, results, outputs) exactly as it was: same paths, folders
included, same bytes and times.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable

import onnx
import pytest
from onnx import TensorProto, helper

import test as test_script
import train as train_script
import translate as translate_script
from tests.test_bad_inputs import (CASES, Ctx, bomb_png, run_as_nobody, trained,  # noqa: F401  (fixture)
                                    world_readable_copy)

Setup = Callable[[Ctx], tuple[list[str], str]]


def plain_onnx(path: Path) -> None:
    """A valid ONNX model (y = x) that export.py did not write: no pix2pix metadata."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain", [x], [y])
    onnx.save_model(helper.make_model(graph), path)


def translate_argv(c: Ctx, source: Path, *extra: str) -> list[str]:
    return ["translate", "--input", str(source), "--output", str(c.ckpt / "out"), "--checkpoints_dir", str(c.ckpt),
            "--gpu_ids", "-1", *extra]


def translate_input(write: Callable[[Path], None], name: str) -> Setup:
    """translate.py with the trained 'exp' over a folder holding one file, ``name``."""
    def setup(c: Ctx) -> tuple[list[str], str]:
        folder = c.data / "inputs"
        folder.mkdir()
        write(folder / name)
        return translate_argv(c, folder, "--name", "exp"), name
    return setup


def _bomb_in_test_split(c: Ctx) -> tuple[list[str], str]:
    bomb_png(c.data / "test" / "bomb.png")
    return c.test(), "bomb.png"


def _empty_in_test_split(c: Ctx) -> tuple[list[str], str]:
    (c.data / "test" / "zero.png").write_bytes(b"")
    return c.test(), "zero.png"


def _onnx_without_metadata(c: Ctx) -> tuple[list[str], str]:
    plain_onnx(c.data / "plain.onnx")
    return translate_argv(c, c.data / "test" / "000.png", "--onnx", str(c.data / "plain.onnx")), "plain.onnx"


def _truncated_onnx(c: Ctx) -> tuple[list[str], str]:
    plain_onnx(c.data / "cut.onnx")
    data = (c.data / "cut.onnx").read_bytes()
    (c.data / "cut.onnx").write_bytes(data[:len(data) // 2])
    return translate_argv(c, c.data / "test" / "000.png", "--onnx", str(c.data / "cut.onnx")), "cut.onnx"


CASES_MORE: dict[str, Setup] = {
    "test_py_decompression_bomb": _bomb_in_test_split,
    "test_py_empty_file": _empty_in_test_split,
    "translate_decompression_bomb": translate_input(bomb_png, "bomb.png"),
    "translate_empty_file": translate_input(lambda p: p.write_bytes(b""), "zero.png"),
    "translate_not_an_image": translate_input(lambda p: p.write_text("not a picture\n"), "notes.png"),
    "onnx_without_metadata": _onnx_without_metadata,
    "truncated_onnx": _truncated_onnx,
}


def as_fresh_run(setup: Setup) -> Setup:
    """The same refusal for a run that starts fresh: --name fresh, no --continue_train."""
    def fresh(c: Ctx) -> tuple[list[str], str]:
        argv, culprit = setup(c)
        argv = list(argv)
        argv[argv.index("--name") + 1] = "fresh"
        argv.remove("--continue_train")   # the first: Ctx.train's own; a case's explicit one stays
        return argv, culprit
    return fresh


# The files and options sections of the first table (its checkpoint section needs 'exp').
FIRST_TABLE = list(CASES)
FRESH = {f"fresh_{name}": as_fresh_run(CASES[name]) for name in FIRST_TABLE[:FIRST_TABLE.index("other_width")]}
ALL = {**CASES_MORE, **FRESH}


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``folder`` (folders too) with its bytes and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = os.fsdecode(path.relative_to(folder))
        found[key] = (("dir", 0) if path.is_dir() else
                      (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns))
    return found


DRIVERS = {"train": train_script.main, "test": test_script.main, "translate": translate_script.main}


@pytest.mark.parametrize("case", list(ALL))
def test_bad_input_gives_one_line_and_writes_nothing(case: str, trained: tuple[Path, Path], capsys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    work, ctx = world_readable_copy(trained, "bad_input_more_")
    try:
        argv, culprit = ALL[case](ctx)
        before = snapshot(ctx.ckpt)
        monkeypatch.chdir(work)
        capsys.readouterr()
        if argv[0] == "nobody":
            code, err = run_as_nobody(argv[1:], work)
        else:
            try:
                code = DRIVERS[argv[0]](argv[1:])
            except SystemExit as exit_:
                code = exit_.code
            err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code not in (0, None), f"{case}: exit status {code}"
        assert len(lines) == 1, f"{case}: expected one line, got:\n{err}"
        assert culprit in lines[0], f"{case}: {culprit!r} not in {lines[0]!r}"
        assert "Traceback" not in err
        assert snapshot(ctx.ckpt) == before, f"{case}: the checkpoints folder changed"
    finally:
        shutil.rmtree(work, ignore_errors=True)
