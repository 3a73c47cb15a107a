"""serve.py on loopback, through the HTTP API the page uses (gradio's client): bad uploads get a
message on the page and the server keeps serving; a CMYK JPEG upload gets its RGB's answer; 4
clients at once each get what the same request gets alone (a small benchmarks/serve_load.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.test_bad_inputs import bomb_png
from tests.test_odd_inputs_load import cmyk_jpeg
from tests.test_translate import save_ours

from benchmarks.serve_clients import Served, client_for, client_temp_folder, run_clients, send, serial_outputs, serve, stroke_canvas

FACADE = Path(__file__).resolve().parent / "fixtures" / "facades" / "test" / "1.jpg"
RESNET = dict(netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    tmp = tmp_path_factory.mktemp("serve_load")
    save_ours(tmp / "ck" / "exp", **RESNET)
    # The clients' empty download folders stay in the test's own folder, not in /tmp.
    with client_temp_folder(tmp / "client_tmp"), serve(tmp / "ck", "exp", tmp) as served:
        yield served, tmp


def bad_upload(kind: str, path: Path) -> Path:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_an_image":
        path.write_text("hello, not a picture\n")
    else:
        bomb_png(path)
    return path


MESSAGES = {"empty": "upload.png: the uploaded file is empty (0 bytes)",
            "not_an_image": "upload.png: not a picture (no image format this page reads)",
            "bomb": "upload.png: refused, it declares more than"}


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_a_bad_upload_gets_a_message_and_the_server_keeps_serving(kind: str, server: tuple[Served, Path],
                                                                  tmp_path: Path) -> None:
    served, _ = server
    client = client_for(served.url, tmp_path / "dl")
    stroke = stroke_canvas(tmp_path / "strokes.png", seed=1)
    (alone,) = serial_outputs(served.url, [stroke], tmp_path / "dl0")
    outcome = send(client, bad_upload(kind, tmp_path / "upload.png"), 0)
    assert outcome.kind == "refused" and outcome.message.startswith(MESSAGES[kind]), outcome
    after = send(client, stroke, 0)   # the next request is answered as before
    assert after.kind == "ok" and np.array_equal(after.pixels, alone)


def test_a_cmyk_jpeg_upload_gets_the_answer_of_its_rgb(server: tuple[Served, Path], tmp_path: Path) -> None:
    served, _ = server
    cmyk_jpeg(tmp_path / "cmyk.jpg")
    with Image.open(tmp_path / "cmyk.jpg") as stored:
        stored.convert("RGB").save(tmp_path / "rgb.png")
    cmyk, rgb = serial_outputs(served.url, [tmp_path / "cmyk.jpg", tmp_path / "rgb.png"], tmp_path / "dl")
    assert np.array_equal(cmyk, rgb)


def test_four_clients_at_once_get_what_each_request_gets_alone(server: tuple[Served, Path], tmp_path: Path) -> None:
    served, tmp = server
    leftovers = len(list((tmp / "client_tmp").iterdir()))
    # One input twice on purpose: equal answers used to share one gradio cache file, rewritten
    # while another client was downloading it (that client got 0 bytes).
    inputs = [stroke_canvas(tmp_path / f"s{i}.png", seed=i) for i in range(3)] + [FACADE]
    inputs.append(stroke_canvas(tmp_path / "again.png", seed=0))
    expected = serial_outputs(served.url, inputs, tmp_path / "alone")
    outcomes = run_clients(served.url, inputs, clients=4, per_client=5, downloads=tmp_path / "dl", deadline_s=300)
    # 4 clients never fill the default queue of 8: every request is answered.
    assert [o.kind for o in outcomes] == ["ok"] * 20, [o.message for o in outcomes if o.kind != "ok"]
    wrong = [o.input_index for o in outcomes if not np.array_equal(o.pixels, expected[o.input_index])]
    assert wrong == []
    # gradio_client left one empty folder per download (25 here) where the fixture put them.
    assert len(list((tmp / "client_tmp").iterdir())) - leftovers == 25


def test_sigterm_stops_the_server_cleanly_and_removes_its_results_folder(tmp_path: Path) -> None:
    """What a service manager sends: gradio closes, the process exits 0, and the folder the page
    keeps its results in (a fresh one in the temp directory) is gone with it."""
    save_ours(tmp_path / "ck" / "exp", **RESNET)
    server_tmp = tmp_path / "server_tmp"
    server_tmp.mkdir()
    with client_temp_folder(tmp_path / "client_tmp"), \
            serve(tmp_path / "ck", "exp", tmp_path, env={"TMPDIR": str(server_tmp)}) as served:
        (answer,) = serial_outputs(served.url, [stroke_canvas(tmp_path / "s.png", seed=3)], tmp_path / "dl")
        assert answer is not None
        kept = [p for p in server_tmp.iterdir() if p.name.startswith("pix2pix_serve_")]
        assert len(kept) == 1 and any(kept[0].iterdir())   # the answer's file is in it
    assert served.process is not None and served.process.returncode == 0, served.log.read_text()[-2000:]
    assert not kept[0].exists()
