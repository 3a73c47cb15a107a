"""Number options out of range are one line at parse time, before a folder or a network exists.
For --beta1 and --init_gain the oracle is torch itself, which refuses the same values mid-run
(with a traceback, as it did); a negative --lambda_L1 would reward moving away from the target."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from options.parse import parse_options
from tests.pipeline_helpers import tiny_args


def torch_refuses(option: str, value: float) -> bool:
    try:
        if option == "beta1":
            torch.optim.Adam([torch.zeros(1, requires_grad=True)], betas=(value, 0.999))
        else:
            torch.nn.init.normal_(torch.zeros(2), 0.0, value)
    except (ValueError, RuntimeError):
        return True
    return False


@pytest.mark.parametrize("option,value,accepted", [
    ("beta1", 1.5, False), ("beta1", 1.0, False), ("beta1", -0.1, False), ("beta1", 0.0, True), ("beta1", 0.9, True),
    ("init_gain", -1.0, False), ("init_gain", 0.0, True), ("init_gain", 0.02, True),
])
def test_range_agrees_with_torch(tmp_path: Path, capsys, option: str, value: float, accepted: bool) -> None:
    assert torch_refuses(option, value) == (not accepted)
    args = tiny_args(tmp_path, tmp_path / "ck") + [f"--{option}", str(value)]
    if accepted:
        assert getattr(parse_options(args, is_train=True), option) == value
        return
    with pytest.raises(SystemExit) as stop:
        parse_options(args, is_train=True)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and f"--{option} must be" in err and f"got {value:g}" in err


@pytest.mark.parametrize("value,accepted", [(-1.0, False), (0.0, True), (100.0, True)])
def test_lambda_l1_is_not_negative(tmp_path: Path, capsys, value: float, accepted: bool) -> None:
    args = tiny_args(tmp_path, tmp_path / "ck") + ["--lambda_L1", str(value)]
    if accepted:
        assert parse_options(args, is_train=True).lambda_L1 == value
        return
    with pytest.raises(SystemExit):
        parse_options(args, is_train=True)
    assert "--lambda_L1 must be 0 or more, got -1" in capsys.readouterr().err
