"""util/argtypes.py: the number types every layer and tool parses flags with; each bad value is
one line naming the flag, what it must be and what was typed."""
from __future__ import annotations

import argparse

import pytest

from util import argtypes


def _error(kind, value: str, capsys: pytest.CaptureFixture) -> str:
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--n", type=kind)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--n", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize("kind, good, bad, message", [
    (argtypes.positive_int, {"1": 1, "007": 7}, "0", "must be a positive integer, got 0"),
    (argtypes.positive_int, {}, "x", "must be a positive integer, got 'x'"),
    (argtypes.non_negative_int, {"0": 0, "12": 12}, "-1", "must be 0 or more, got -1"),
    (argtypes.non_negative_int, {}, "1.5", "must be 0 or more, got '1.5'"),
    (argtypes.positive_float, {"0.5": 0.5, "1e-3": 0.001}, "0", "must be a positive number, got 0"),
    (argtypes.positive_float, {}, "nan", "must be a positive number, got nan"),
    (argtypes.non_negative_float, {"0": 0.0, "2.5": 2.5}, "-0.1", "must be 0 or more, got -0.1"),
    (argtypes.non_negative_float, {}, "a", "must be 0 or more, got 'a'"),
    (argtypes.int_range(1), {"1": 1}, "0", "must be at least 1, got 0"),
    (argtypes.int_range(1, 3), {"3": 3}, "4", "must be between 1 and 3, got 4"),
    (argtypes.int_range(None, 3), {"-5": -5}, "4", "must be at most 3, got 4"),
    (argtypes.int_range(32), {}, "big", "expected an integer, got 'big'"),
])
def test_each_type_by_hand(kind, good: dict, bad: str, message: str, capsys: pytest.CaptureFixture) -> None:
    assert {text: kind(text) for text in good} == good
    assert _error(kind, bad, capsys) == f"tool: error: argument --n: {message}"


def test_the_tools_and_options_use_the_shared_types(capsys: pytest.CaptureFixture) -> None:
    """Their messages are the shared types' (each tool had its own copy)."""
    from datasets import combine_A_and_B, make_demo
    from options import numbers

    assert numbers.positive_int is argtypes.positive_int and numbers.non_negative_int is argtypes.non_negative_int
    for main, args, message in (
            (combine_A_and_B.main, ["--fold_A", "a", "--fold_B", "b", "--fold_AB", "c", "--num_imgs", "0"],
             "argument --num_imgs: must be at least 1, got 0"),
            (make_demo.main, ["--size", "16"], "argument --size: must be at least 32, got 16"),
            (make_demo.main, ["--n_test", "x"], "argument --n_test: expected an integer, got 'x'")):
        with pytest.raises(SystemExit):
            main(args)
        assert capsys.readouterr().err.strip().endswith(message)


@pytest.mark.parametrize("argv,message", [
    (["--port", "abc"], "argument --port: expected an integer, got 'abc'"),
    (["--port", "70000"], "argument --port: must be between 1 and 65535, got 70000"),
])
def test_serve_port_is_one_line_without_internal_names(argv: list[str], message: str, capsys) -> None:
    import serve

    with pytest.raises(SystemExit) as stop:
        serve.parse(["--name", "x", *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and message in err and "port_number" not in err
