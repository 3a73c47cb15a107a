"""train_opt.txt (options/parse.py: format_options): every option in force, the typed ones marked."""
from __future__ import annotations

from pathlib import Path

from options.parse import format_options, parse_options


def test_options_file_lists_every_option_and_marks_the_typed_ones(tmp_path: Path):
    opt = parse_options(["--dataroot", str(tmp_path), "--ngf", "8", "--gpu_ids", "-1", "--name", "x"], is_train=True)
    text = format_options(opt)
    lines = {line.split(":")[0].strip(): line for line in text.splitlines()[1:-1]}
    assert set(lines) == set(opt.as_dict())
    assert lines["ngf"].split(":", 1)[1].split() == ["8", "(typed)"]
    assert lines["ndf"].split(":", 1)[1].split() == ["64"]           # a default: not marked
    assert lines["netG"].split(":", 1)[1].split() == ["unet_256"]    # pix2pix's model default
    assert text.startswith("-") and text.endswith("-\n")
