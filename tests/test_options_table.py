"""README's "Options at a glance" table is scripts/options_table.py's output, and that output
lists exactly what the parsers accept (read from argparse itself, not from the registries)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from options.parse import build_parser

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("options_table", ROOT / "scripts" / "options_table.py")
ot = importlib.util.module_from_spec(_spec)
sys.modules["options_table"] = ot   # dataclasses look their module up while the file runs
_spec.loader.exec_module(ot)


def _choices(option: str) -> list[str]:
    # argparse has no public list of a parser's options (tests may read privates; see ARCHITECTURE)
    for is_train in (True, False):
        for action in build_parser(is_train)._actions:
            if option in action.option_strings:
                return list(action.choices)
    raise AssertionError(f"no parser has {option}")


def test_the_readme_table_is_the_generated_one() -> None:
    assert ot.options_table() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("row", ot.ROWS, ids=lambda r: r.option)
def test_each_row_lists_exactly_what_the_parser_accepts(row) -> None:
    listed = ot.entries(row)
    assert sorted([name for name, _, _ in listed] + [a for _, aliases, _ in listed for a in aliases]) == \
        sorted(_choices(row.option))
    cell = ot.cell(row)
    assert all(f"`{name}`" in cell and all(f"`{a}`" in cell for a in aliases) for name, aliases, _ in listed)


@pytest.mark.parametrize("row", ot.ROWS, ids=lambda r: r.option)
def test_every_note_belongs_to_a_listed_choice(row) -> None:
    assert set(row.notes) <= {name for name, _, _ in ot.entries(row)}


def test_a_new_entry_shows_up_without_an_edit() -> None:
    from util.registry import Registry
    reg: Registry[int] = Registry("--thing")
    reg.add("a", 1, gamma=0.5)
    reg.add("b", 2, aliases=("bee",))
    row = ot.Row("--thing", reg, {"a": " (gamma {gamma:g})"})
    assert ot.options_table([row]).splitlines()[-1] == "| `--thing` | `a` (gamma 0.5), `b` (`bee`) |"


def test_the_script_prints_the_table() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "options_table.py")], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out == ot.options_table() + "\n"
