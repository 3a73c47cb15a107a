"""The drivers catch one error type, ``UserError`` (one line, exit 1); anything else is a bug
and keeps its traceback.

Checked two ways: the drivers' except clauses are read from their source (every caught type is
a UserError, a requested stop, or is turned into a UserError on the spot), and each driver is
run with a programming error planted where its work starts.
"""
from __future__ import annotations

import ast
import builtins
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.stop import ForcedStop, TrainingStopped
from util.errors import OptionError, UserError

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("train", "test", "translate", "serve", "export")
# Requests to stop (a signal, Ctrl+C): not errors, each with its own exit status.
STOPS = (KeyboardInterrupt, TrainingStopped, ForcedStop)


def load_driver(name: str) -> ModuleType:
    """By file, so that ``test`` is the project's test.py and not Python's own test package."""
    spec = importlib.util.spec_from_file_location(f"driver_{name}", ROOT / f"{name}.py")
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def resolve(node: ast.expr, module: ModuleType) -> Any:
    if isinstance(node, ast.Name):
        return getattr(module, node.id) if hasattr(module, node.id) else getattr(builtins, node.id)
    if isinstance(node, ast.Attribute):
        return getattr(resolve(node.value, module), node.attr)
    raise AssertionError(f"unexpected except expression {ast.unparse(node)}")


def converts_to_user_error(handler: ast.ExceptHandler, module: ModuleType) -> bool:
    """The handler's last statement raises a UserError (``raise ServeError(...) from None``)."""
    last = handler.body[-1]
    if not isinstance(last, ast.Raise) or not isinstance(last.exc, ast.Call):
        return False
    raised = resolve(last.exc.func, module)
    return isinstance(raised, type) and issubclass(raised, UserError)


def forbidden_handlers(name: str) -> list[str]:
    module = load_driver(name)
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    found = []
    for handler in (n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)):
        where = f"{name}.py:{handler.lineno}"
        if handler.type is None:
            found.append(f"{where}: bare except")
            continue
        nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for node in nodes:
            caught = resolve(node, module)
            if issubclass(caught, UserError) or caught in STOPS or converts_to_user_error(handler, module):
                continue
            found.append(f"{where}: catches {caught.__name__}")
    return found


@pytest.mark.parametrize("name", DRIVERS)
def test_drivers_catch_only_user_errors_and_stops(name: str) -> None:
    assert forbidden_handlers(name) == []


def test_the_scan_finds_a_bare_value_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan itself can fail: a driver that catches ValueError and prints it is reported."""
    (tmp_path / "bad.py").write_text("import sys\ndef main():\n    try:\n        return 0\n"
                                     "    except (ValueError, KeyError) as err:\n        print(err)\n        return 1\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert forbidden_handlers("bad") == ["bad.py:5: catches ValueError", "bad.py:5: catches KeyError"]


# driver -> (the function its main calls first inside the try, a command line that gets there)
PLANTS = {
    "train": ("train", ["--dataroot", "unused", "--name", "bug", "--gpu_ids", "-1", "--display_id", "0"]),
    "test": ("find_generator", ["--dataroot", "unused", "--name", "bug", "--gpu_ids", "-1"]),
    "translate": ("run", ["--name", "bug", "--input", "in", "--output", "out"]),
    "serve": ("run", ["--name", "bug"]),
    "export": ("run", ["--name", "bug"]),
}


def planted(error: BaseException):
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error
    return fail


@pytest.mark.parametrize("name", DRIVERS)
@pytest.mark.parametrize("bug", [ValueError("a bug"), RuntimeError("a bug"), KeyError("a bug")],
                         ids=lambda e: type(e).__name__)
def test_a_programming_error_leaves_the_driver(name: str, bug: Exception, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    driver = load_driver(name)
    function, argv = PLANTS[name]
    monkeypatch.setattr(driver, function, planted(bug))
    with pytest.raises(type(bug), match="a bug"):
        driver.main(argv)


@pytest.mark.parametrize("name", DRIVERS)
def test_a_user_error_is_one_line_and_exit_1(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    driver = load_driver(name)
    function, argv = PLANTS[name]
    monkeypatch.setattr(driver, function, planted(OptionError("--ngf 0: must be positive")))
    assert driver.main(argv) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"{name}.py: error: --ngf 0: must be positive"]


def test_a_programming_error_prints_its_traceback(tmp_path: Path) -> None:
    """As a user sees it: the process shows the traceback down to the failing line."""
    code = ("import sys, translate\n"
            "def run(opt):\n    return {}['missing']\n"
            "translate.run = run\nsys.exit(translate.main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", code, "--name", "bug", "--input", "in", "--output", "out"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "KeyError: 'missing'"
    assert "translate.py: error" not in done.stderr


def test_a_lost_peer_is_a_user_error_and_other_runtime_errors_stay_bugs() -> None:
    from engine.distributed import DistributedError, peer_failures_reported
    # gloo names its source file in the message of a collective that a dead peer broke.
    with pytest.raises(DistributedError, match=r"^lost contact with the other processes \(\[/src/gloo/pair.cc:1\] "
                                               r"Connection closed by peer\)$"):
        with peer_failures_reported():
            raise RuntimeError("[/src/gloo/pair.cc:1] Connection closed by peer\nmore detail")
    with pytest.raises(RuntimeError, match="^a bug$") as bug:
        with peer_failures_reported():
            raise RuntimeError("a bug")
    assert not isinstance(bug.value, UserError)
