"""export.py --format onnx: onnxruntime gives PyTorch's output to 1e-4 on facades images, with
dynamic batch and sizes; the metadata describes the file; translate.py --onnx runs it without a
torch network; failures are one line and leave an existing file alone."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

import export
import translate
from data.transforms import to_signed_unit
from inference.onnx_model import OnnxGenerator
from models.batchnorm import set_bn_eval_mode
from tests.test_translate import save_ours

FACADES = Path(__file__).resolve().parent / "fixtures" / "facades" / "test"
UNET = dict(netG="unet_256", ngf=4, norm="batch", no_dropout=False)


def facade_batch(size: tuple[int, int] = (256, 256)) -> torch.Tensor:
    """The photo halves of the fixture facades, as the network sees them (N, 3, H, W) in [-1, 1]."""
    images = []
    for path in sorted(FACADES.glob("*.jpg")):
        with Image.open(path) as pair:
            photo = pair.convert("RGB").crop((0, 0, pair.width // 2, pair.height)).resize(size[::-1])
        images.append(to_signed_unit(torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)))
    return torch.stack(images)


def export_args(tmp: Path, name: str, *extra: str) -> list[str]:
    return ["--name", name, "--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1", *extra]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised unet_256 (random running statistics too) and its default export."""
    tmp = tmp_path_factory.mktemp("export")
    net = save_ours(tmp / "ck" / "exp", **UNET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert export.main(export_args(tmp, "exp")) == 0
    EXPORT_WARNINGS[:] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return tmp, net


# What the default export above warned about (its stderr, as a user sees it).
EXPORT_WARNINGS: list[str] = []


def test_the_export_gets_the_umasks_mode(exported) -> None:
    """Written through a temporary file (mkstemp: 0600) and a rename, the file must still get
    the mode a plain open gives under the umask, readable by the accounts that should read it."""
    import stat

    tmp, _ = exported
    onnx_file = next((tmp / "ck" / "exp").glob("*.onnx"))
    with open(tmp / "plain", "w"):   # the oracle: the OS's mode for a new file here
        pass
    assert stat.S_IMODE(onnx_file.stat().st_mode) == stat.S_IMODE((tmp / "plain").stat().st_mode)


def test_export_prints_no_future_warning_of_torch(exported) -> None:
    assert not [w for w in EXPORT_WARNINGS if w.startswith("FutureWarning")]


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


def test_onnxruntime_matches_pytorch_running_statistics(exported) -> None:
    tmp, net = exported
    path = tmp / "ck" / "exp" / "latest_net_G.onnx"
    net.eval()
    set_bn_eval_mode(net, "running")
    # Batch 3 at 256 px and batch 1 at 512 x 256: the axes are dynamic.
    for x in (facade_batch(), facade_batch((512, 256))[:1]):
        with torch.no_grad():
            expected = net(x).numpy()
        got = run_onnx(path, x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4
        assert np.abs(expected).max() > 0.05   # not a trivially zero output


def test_metadata_describes_the_model(exported) -> None:
    tmp, _ = exported
    model = onnx.load(tmp / "ck" / "exp" / "latest_net_G.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pix2pix.input_nc"] == "3" and meta["pix2pix.output_nc"] == "3"
    assert meta["pix2pix.size_multiple"] == "256"      # 2 ** 8 for the 8 downsamplings of unet_256
    assert meta["pix2pix.output_range"] == "[-1, 1]"
    assert meta["pix2pix.translate_io"] == "rgb"
    assert "bn_eval=running" in meta["pix2pix.norm_behaviour"] and "dropout off" in meta["pix2pix.norm_behaviour"]
    assert "multiples of 256" in meta["pix2pix.preprocessing"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


def test_translate_onnx_equals_translate_checkpoint_without_torch_network(exported, tmp_path: Path,
                                                                          monkeypatch) -> None:
    tmp, _ = exported
    ck = ["--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1", "--input", str(FACADES)]
    assert translate.main([*ck, "--name", "exp", "--eval", "--output", str(tmp_path / "torch")]) == 0

    def no_network(*args, **kwargs):
        raise AssertionError("translate.py --onnx built a torch network")

    monkeypatch.setattr("models.networks.spec.NetSpec.build", no_network)   # the one place a network is built
    assert translate.main([*ck, "--onnx", str(tmp / "ck" / "exp" / "latest_net_G.onnx"),
                           "--output", str(tmp_path / "onnx")]) == 0
    for path in sorted((tmp_path / "torch").glob("*.png")):
        a = np.asarray(Image.open(path)).astype(int)
        b = np.asarray(Image.open(tmp_path / "onnx" / path.name)).astype(int)
        assert a.shape == b.shape == (256, 512, 3)   # the input's own size (the whole facade pair)
        assert np.abs(a - b).max() <= 1


def test_colorization_with_batch_statistics_matches_and_runs_in_translate(tmp_path: Path) -> None:
    # One export covers two choices: the colorization codec (L in, ab out) and --bn_eval batch.
    net = save_ours(tmp_path / "ck" / "col", **UNET, model="colorization", input_nc=1, output_nc=2)
    out = tmp_path / "col.onnx"
    assert export.main(export_args(tmp_path, "col", "--bn_eval", "batch", "--output", str(out))) == 0
    spec = OnnxGenerator(out).spec
    assert (spec.input_nc, spec.output_nc, spec.translate_io) == (1, 2, "lab")

    x = facade_batch()[:, :1]   # any one-channel batch in [-1, 1] stands in for L
    net.eval()
    with torch.no_grad():
        set_bn_eval_mode(net, "batch")
        expected = net(x).numpy()
        set_bn_eval_mode(net, "running")
        with_running = net(x).numpy()
    got = run_onnx(out, x)
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got - with_running).max() > 1e-2   # the two batch norm modes really differ here

    photo = FACADES / "1.jpg"
    ck = ["--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1", "--input", str(photo)]
    assert translate.main([*ck, "--name", "col", "--eval", "--bn_eval", "batch",
                           "--output", str(tmp_path / "torch")]) == 0
    assert translate.main([*ck, "--onnx", str(out), "--output", str(tmp_path / "onnx")]) == 0
    a = np.asarray(Image.open(tmp_path / "torch" / "1.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "onnx" / "1.png")).astype(int)
    assert a.shape == b.shape == (256, 512, 3) and np.abs(a - b).max() <= 1


def test_bad_input_is_one_line_and_keeps_existing_file(exported, tmp_path: Path, capsys, monkeypatch) -> None:
    tmp, _ = exported
    assert export.main(export_args(tmp, "missing")) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("export.py: error:") and "no generator checkpoint" in err

    target = tmp_path / "keep.onnx"
    target.write_bytes(b"previous export")

    def failing_export(*args, **kwargs):
        raise RuntimeError("exporter broke\nsecond line")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    assert export.main(export_args(tmp, "exp", "--output", str(target))) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"export.py: error: {target}: the ONNX export failed (exporter broke)"
    assert target.read_bytes() == b"previous export" and sorted(tmp_path.iterdir()) == [target]

    for bad, message in ((tmp_path / "none.onnx", "--onnx file does not exist"),
                         (target, "onnxruntime cannot load it")):
        assert translate.main(["--onnx", str(bad), "--input", str(FACADES), "--output", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err


def test_export_has_no_dropout_or_paper_mode_flags() -> None:
    # The graph is frozen in eval mode: only --bn_eval is offered (see export.py's --help).
    with pytest.raises(SystemExit):
        export.parse(["--name", "x", "--dropout", "on"])
    opt = export.parse(["--name", "x", "--gpu_ids", "-1"])
    assert (opt.eval, opt.dropout, opt.bn_eval) == (True, "off", "running")


def test_a_resnet_generator_exports_and_matches_pytorch(tmp_path: Path) -> None:
    """The ResNet generators take multiples of 4 px; a 4 px example made the exporter fail."""
    net = save_ours(tmp_path / "ck" / "res", netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)
    out = tmp_path / "res.onnx"
    assert export.main(export_args(tmp_path, "res", "--output", str(out))) == 0
    x = facade_batch((32, 48))
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    assert np.abs(run_onnx(out, x) - expected).max() < 1e-4


def test_torchs_torchvision_warnings_are_not_printed(caplog: pytest.LogCaptureFixture) -> None:
    """torch's exporter warns 'torchvision is not installed. Skipping torchvision::nms' (and three
    more) at every export; the filter sits on the logger torch itself uses, and lets its other
    warnings through."""
    from torch.onnx._internal.exporter import _registration
    from inference import onnx_model
    registration = _registration.logger
    assert registration.name == onnx_model._TORCH_REGISTRATION_LOGGER
    with caplog.at_level(logging.WARNING, logger=registration.name):
        registration.warning("torchvision is not installed. Skipping %s", "torchvision::nms")
        registration.warning("some other exporter warning")
    assert [r.getMessage() for r in caplog.records] == ["some other exporter warning"]
