"""Options that cannot work with the checkpoint (or ONNX file) are refused before any work,
as one line, by translate.py, serve.py and export.py alike: a typed --model whose channels
contradict the generator, a --bn_eval that would be ignored, a --name that is a file."""
from __future__ import annotations

from pathlib import Path

import pytest

import export
import serve
import translate
from inference.onnx_model import OnnxSpec
from options.inference import build_inference_parser
from options.parse import build_parser
from tests.test_translate import rng_image, run, save_ours
from util.errors import UserError

NET = dict(netG="resnet_6blocks", ngf=2)


@pytest.fixture
def pix2pix(tmp_path: Path) -> Path:
    save_ours(tmp_path / "ck" / "exp", **NET)
    rng_image((20, 16), "RGB").save(tmp_path / "b.png")
    return tmp_path


def mismatch(tmp: Path) -> str:
    # One line for every command (test.py's too: tests/test_translate_refusals.py), from the model the
    # checkpoint records, before its channels are looked at.
    return (f"{tmp / 'ck' / 'exp' / 'latest_net_G.pt'}: it was trained as --model pix2pix, so --model colorization "
            "cannot run it (its images are encoded differently): leave --model out")


def test_a_typed_model_that_contradicts_the_checkpoint_is_one_line(pix2pix: Path, capsys, unused_loopback_port) -> None:
    tmp = pix2pix
    assert run(tmp, "--name", "exp", "--model", "colorization", "--input", str(tmp / "b.png"),
               "--output", str(tmp / "o")) == 1
    assert capsys.readouterr().err == f"translate.py: error: {mismatch(tmp)}\n"
    assert not (tmp / "o").exists()
    assert serve.main(["--name", "exp", "--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1", "--model",
                       "colorization", "--port", str(unused_loopback_port)]) == 1
    assert capsys.readouterr().err == f"serve.py: error: {mismatch(tmp)}\n"


def test_export_refuses_it_and_keeps_the_existing_file(pix2pix: Path, capsys) -> None:
    tmp = pix2pix
    existing = tmp / "ck" / "exp" / "latest_net_G.onnx"
    existing.write_bytes(b"the user's earlier export")
    assert export.main(["--name", "exp", "--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1",
                        "--model", "colorization"]) == 1
    assert capsys.readouterr().err == f"export.py: error: {mismatch(tmp)}\n"
    assert existing.read_bytes() == b"the user's earlier export"


def test_an_onnx_file_whose_metadata_contradicts_its_channels_is_refused() -> None:
    # What export.py wrote before the check: translate_io lab on a 3 -> 3 graph.
    meta = OnnxSpec(3, 3, 4, "lab", "norm layers: eval", "resnet_6blocks").metadata()
    with pytest.raises(UserError) as err:
        OnnxSpec.from_metadata(meta, Path("g.onnx"))
    assert str(err.value) == ("g.onnx: its metadata's translate_io lab needs a generator with 1 -> 2 channels, "
                              "this one has 3 -> 3; the file is inconsistent: export it again from a checkpoint")
    assert OnnxSpec.from_metadata({**meta, "input_nc": "1", "output_nc": "2"}, Path("g.onnx")).output_nc == 2


def test_bn_eval_without_eval_is_refused(pix2pix: Path, capsys) -> None:
    tmp = pix2pix
    for mode in ("batch", "running"):
        assert run(tmp, "--name", "exp", "--bn_eval", mode, "--input", str(tmp / "b.png"),
                   "--output", str(tmp / "o")) == 1
        assert capsys.readouterr().err == (
            f"translate.py: error: --bn_eval {mode} only applies with --eval (without it, batch norm uses each "
            "image's own statistics and dropout is on, as in the paper); add --eval\n")
    assert not (tmp / "o").exists()
    assert run(tmp, "--name", "exp", "--eval", "--bn_eval", "batch", "--input", str(tmp / "b.png"),
               "--output", str(tmp / "o")) == 0


def test_bn_eval_help_describes_only_the_modes_offered() -> None:
    def bn_help(parser) -> str:
        return next(a.help for a in parser._actions if a.dest == "bn_eval")

    for frozen in (False, True):   # translate.py and serve.py; export.py
        parser = build_inference_parser("translate.py", "", frozen=frozen)
        text = bn_help(parser)
        assert next(a.choices for a in parser._actions if a.dest == "bn_eval") == ["running", "batch"]
        assert "running:" in text and "batch:" in text and "precise" not in text
    assert "precise:" in bn_help(build_parser(is_train=False))   # test.py has training data for it


def test_a_mode_that_needs_training_data_is_offered_by_test_py_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which --bn_eval modes translate, serve and export offer follows each entry's
    needs_training_data, not a list of names."""
    from models.batchnorm import BN_EVAL_MODES
    from util.registry import Entry

    monkeypatch.setitem(BN_EVAL_MODES._entries, "measured", Entry("measured", "measured", "from training batches",
                                                                  meta={"needs_training_data": True}))
    monkeypatch.setitem(BN_EVAL_MODES._entries, "frozen", Entry("frozen", "frozen", "stored statistics",
                                                                meta={"needs_training_data": False}))
    choices = next(a.choices for a in build_inference_parser("translate.py", "")._actions if a.dest == "bn_eval")
    assert choices == ["running", "batch", "frozen"]


def test_a_name_that_is_a_checkpoint_file_points_at_its_folder(pix2pix: Path, capsys) -> None:
    tmp = pix2pix
    file = tmp / "ck" / "exp" / "latest_net_G.pt"
    assert translate.main(["--name", str(file), "--gpu_ids", "-1", "--input", str(tmp / "b.png"),
                           "--output", str(tmp / "o")]) == 1
    assert capsys.readouterr().err == (
        f"translate.py: error: --name {file}: --name is the run's folder name, found under --checkpoints_dir, "
        f"not a file; for latest_net_G.pt give --checkpoints_dir {tmp / 'ck'} --name exp\n")
