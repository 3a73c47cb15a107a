"""The display flags refuse bad values in one line naming the option and the allowed range
(argparse's own message would name an internal function: "invalid _positive_int value"), and
every --help shows each default once (a help text that says its default in words gets no
second "(default: ...)"); compare.py's help shows its defaults."""
from __future__ import annotations

import contextlib
import importlib
import io
import re
from pathlib import Path

import pytest

import compare
from options.parse import parse_options

@pytest.mark.parametrize("flag, value, message", [
    ("--display_port", "99999", "argument --display_port: must be between 1 and 65535, got 99999"),
    ("--display_port", "0", "argument --display_port: must be between 1 and 65535, got 0"),
    ("--display_port", "abc", "argument --display_port: expected an integer, got 'abc'"),
    ("--display_ncols", "x", "argument --display_ncols: must be a positive integer, got 'x'"),
    ("--batch_size", "x", "argument --batch_size: must be a positive integer, got 'x'"),
    ("--max_steps", "1.5", "argument --max_steps: must be 0 or more, got '1.5'"),
])
def test_bad_display_and_count_values_are_one_line(flag: str, value: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_options([flag, value], is_train=True)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"train.py: error: {message} (see --help)" in err or f"error: {message} (see --help)" in err
    assert "_int" not in err and "Traceback" not in err


@pytest.mark.parametrize("port", ["1", "65535"])
def test_the_port_range_ends_are_accepted(port: str, tmp_path: Path) -> None:
    assert parse_options(["--dataroot", str(tmp_path), "--display_port", port], is_train=True).display_port == int(port)


def test_a_negative_display_id_is_off_as_the_help_says(tmp_path: Path) -> None:
    from reporting.reporter import build_reporter
    from reporting.sinks.visdom import VisdomSink

    assert "0 or less" in help_text("train")
    for display_id in ("0", "-1", "-5"):
        opt = parse_options(["--dataroot", str(tmp_path), "--display_id", display_id, "--no_html"], is_train=True)
        reporter = build_reporter(opt, tmp_path / display_id)
        assert not any(isinstance(sink, VisdomSink) for sink in reporter.sinks)
        reporter.close()


def help_text(driver: str) -> str:
    """A driver's --help, one line (argparse wraps anywhere)."""
    module = importlib.import_module(driver)
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()) as out:
        module.main(["--help"])
    assert exit_info.value.code == 0
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("driver", ["train", "test", "translate", "export"])
def test_help_shows_each_default_once(driver: str) -> None:
    text = help_text(driver)
    doubled = re.findall(r"default:[^()]*(?:\([^()]*\))?[^()]*\) \(default:", text)
    assert not doubled, doubled
    if driver == "train":
        assert "use at most this many images (default: all) --preprocess" in text
        assert "(default: the usable CPUs, at most 4) --batch_size" in text


def test_compare_help_shows_its_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        compare.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("the split test.py ran on (default: test)", "(latest, best, an epoch) (default: latest)",
                    "(default: compare.html)", "(default: 12)", "(default: results)"):
        assert default in text
