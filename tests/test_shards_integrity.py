"""A shard set's bytes are the ones its index describes, and its tools leave nothing behind.

A set rewritten at the same URL (shards of the same size: tar pads to 10 KiB records) is
fetched again, not served from the cache; a download cut short, an error page sent with status
200 or a shard with another digest is refused in one line and never cached; a version-1 index
that cannot batch by size, and a --shard_cache that is not a usable folder, stop at start-up; a
bad sample is named by its original file. The oracles: the pixel values written, the byte counts
served, the files on disk.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from PIL import Image

import data.shards as shards_module
import train as train_driver
from data import DataConfig, DataError, create_dataset
from data.loader import create_dataloader
from tests.pipeline_helpers import make_aligned_dataset, tiny_args
from tests.shard_helpers import make_shard_set, serve_folder
from util.errors import OptionError

# (path, file bytes) -> (Content-Length to announce, body to send)
Mangle = Callable[[str, bytes], tuple[int, bytes]]


@contextlib.contextmanager
def serve_mangled(folder: Path, mangle: Mangle) -> Iterator[tuple[str, list[str]]]:
    """``folder`` served on 127.0.0.1 with each answer's body passed through ``mangle``; yields
    (base URL, the paths asked for)."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            path = folder / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            length, body = mangle(self.path, path.read_bytes())
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def flat_set(root: Path, value: int, count: int = 3) -> Path:
    """``count`` A|B BMPs of one grey ``value`` (BMP: the same size whatever the pixels)."""
    (root / "train").mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((16, 32, 3), value, np.uint8)).save(root / "train" / f"{i}.bmp")
    return root


def grey_of(sample: dict) -> float:
    return float((sample["A"].mean() + 1) / 2 * 255)


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards_module, "RETRY_PAUSE_S", 0.0)


def test_a_set_rewritten_at_the_same_url_is_fetched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served, cache = tmp_path / "served", tmp_path / "cache"
    make_shard_set(flat_set(tmp_path / "v1", 10), served / "set")
    old_sizes = sorted(p.stat().st_size for p in (served / "set").glob("*.tar"))
    cfg = dict(shard_cache=cache, preprocess="none", no_flip=True)
    with serve_folder(served) as url:
        assert round(grey_of(create_dataset("shards", DataConfig(f"{url}/set", **cfg))[0])) == 10
        for p in (served / "set").iterdir():
            p.unlink()
        make_shard_set(flat_set(tmp_path / "v2", 200), served / "set")
        # The premise: the rewritten shards have the old shards' sizes, so only a digest tells.
        assert sorted(p.stat().st_size for p in (served / "set").glob("*.tar")) == old_sizes
        assert [round(grey_of(s)) for s in create_dataset("shards", DataConfig(f"{url}/set", **cfg))] == [200] * 3

        # A cached copy once checked is not read whole again while it is unchanged (the digest is
        # remembered beside it, keyed by its size and mtime): a later run reads no shard to check it.
        def no_hashing(path: Path) -> str:
            raise AssertionError(f"{path} hashed again")
        monkeypatch.setattr(shards_module, "file_digest", no_hashing)
        assert [round(grey_of(s)) for s in create_dataset("shards", DataConfig(f"{url}/set", **cfg))] == [200] * 3


def test_a_version_2_index_without_digests_still_reads_and_a_version_3_one_needs_them(tmp_path: Path) -> None:
    served = make_shard_set(flat_set(tmp_path / "v1", 10), tmp_path / "served")
    index = json.loads((served / "train.json").read_text())
    index["pix2pix"]["format_version"] = 2
    for shard in index["shardlist"]:
        shard.pop("sha256", None)
    (served / "train.json").write_text(json.dumps(index))
    with serve_folder(served) as url:
        dataset = create_dataset("shards", DataConfig(url, shard_cache=tmp_path / "c", preprocess="none"))
        assert [round(grey_of(s)) for s in dataset] == [10] * 3
    index["pix2pix"]["format_version"] = 3   # a version-3 index must have them
    (served / "train.json").write_text(json.dumps(index))
    with pytest.raises(DataError) as err:
        create_dataset("shards", DataConfig(served, shard_cache=tmp_path / "c"))
    assert str(err.value) == (f"{served / 'train.json'}: shard {served / 'train-000000.tar'} has no sha256 "
                              "digest, which a version-3 index records")


@pytest.mark.parametrize("case", ["cut_short", "error_page"])
def test_a_download_cut_short_is_tried_again_then_refused_and_never_cached(tmp_path: Path, case: str) -> None:
    shards = make_shard_set(make_aligned_dataset(tmp_path / "pairs", {"train": 2}), tmp_path / "shards",
                            samples_per_shard=2)
    size = (shards / "train-000000.tar").stat().st_size
    page = b"<html>error: quota exceeded</html>"

    def mangle(path: str, body: bytes) -> tuple[int, bytes]:
        if not path.endswith(".tar"):
            return len(body), body
        # The full Content-Length and half the body; or a whole answer that is an error page.
        return (len(body), body[:len(body) // 2]) if case == "cut_short" else (len(page), page)

    received = size // 2 if case == "cut_short" else len(page)
    cache = tmp_path / "cache"
    with serve_mangled(shards, mangle) as (url, asked):
        dataset = create_dataset("shards", DataConfig(url, shard_cache=cache, preprocess="none"))
        with pytest.raises(DataError) as err:
            dataset[0]
    assert str(err.value) == f"{url}/train-000000.tar: download cut short ({received} of {size} bytes, 3 tries)"
    assert asked.count("/train-000000.tar") == 3
    assert list(cache.iterdir()) == []   # no shard, no partial file, no lock


def test_a_shard_with_another_digest_is_refused_and_never_cached(tmp_path: Path) -> None:
    shards = make_shard_set(make_aligned_dataset(tmp_path / "pairs", {"train": 2}), tmp_path / "shards",
                            samples_per_shard=2)

    def one_byte_off(path: str, body: bytes) -> tuple[int, bytes]:
        if path.endswith(".tar"):
            body = body[:600] + bytes([body[600] ^ 1]) + body[601:]   # inside the first member's data
        return len(body), body

    cache = tmp_path / "cache"
    with serve_mangled(shards, one_byte_off) as (url, asked):
        dataset = create_dataset("shards", DataConfig(url, shard_cache=cache, preprocess="none"))
        with pytest.raises(DataError, match=rf"^{url}/train-000000\.tar: digest mismatch \(the download's sha256 "
                                            r"is [0-9a-f]{16}\.\.\., the index records [0-9a-f]{16}\.\.\.\)"):
            dataset[0]
    assert asked.count("/train-000000.tar") == 1   # a digest does not change by asking again
    assert list(cache.iterdir()) == []


def mixed_sizes_v1(tmp_path: Path) -> Path:
    """A shard set of pairs of two sizes, with its index rewritten as version 1 (no sizes)."""
    source = tmp_path / "mixed"
    (source / "train").mkdir(parents=True)
    rng = np.random.default_rng(10)
    for i, (h, w) in enumerate([(36, 52), (44, 72), (36, 52), (44, 72)]):
        Image.fromarray(rng.integers(0, 256, (h, 2 * w, 3)).astype(np.uint8)).save(source / "train" / f"{i}.png")
    shards = make_shard_set(source, tmp_path / "v1")
    index = json.loads((shards / "train.json").read_text())
    index["pix2pix"]["format_version"] = 1
    del index["pix2pix"]["sizes"]
    for shard in index["shardlist"]:
        shard.pop("sha256", None)
    (shards / "train.json").write_text(json.dumps(index))
    return shards


@pytest.mark.parametrize("preprocess", ["none", "pad", "scale_width"])
def test_a_version_1_index_that_cannot_batch_by_size_stops_before_the_first_batch(tmp_path: Path,
                                                                                  preprocess: str) -> None:
    shards = mixed_sizes_v1(tmp_path)
    cfg = DataConfig(shards, shard_cache=tmp_path / "c", preprocess=preprocess, load_size=48, crop_size=32)
    dataset = create_dataset("shards", cfg)
    with pytest.raises(DataError) as err:
        create_dataloader(dataset, 2, shuffle=False, num_workers=0, seed=0)
    assert str(err.value) == (
        f"{shards / 'train.json'}: a version-1 shard index records no image sizes (remake the shard set with "
        f"datasets/make_shards.py to record them); --preprocess {preprocess} keeps each image's own size, so "
        "batches of more than one need them: use --batch_size 1 or a --preprocess with a crop")
    # What the message advises works: batches of one, or a crop.
    assert len(list(create_dataloader(dataset, 1, shuffle=False, num_workers=0, seed=0))) == 4
    cropped = create_dataset("shards", DataConfig(shards, shard_cache=tmp_path / "c", crop_size=32, load_size=36))
    batches = list(create_dataloader(cropped, 2, shuffle=False, num_workers=0, seed=0))
    assert [tuple(b["A"].shape) for b in batches] == [(2, 3, 32, 32)] * 2


def test_train_py_refuses_it_in_one_line_before_the_run_folder(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    shards = mixed_sizes_v1(tmp_path)
    argv = [*tiny_args(shards, tmp_path / "runs", "v1"), "--dataset_mode", "shards", "--preprocess", "none",
            "--batch_size", "2", "--serial_batches", "--max_steps", "2", "--shard_cache", str(tmp_path / "c")]
    assert train_driver.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a version-1 shard index records no image sizes" in err
    assert not (tmp_path / "runs" / "v1").exists()


def test_a_shard_cache_that_is_not_a_usable_folder_is_refused_at_start_up(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    shards = make_shard_set(make_aligned_dataset(tmp_path / "pairs", {"train": 2}), tmp_path / "shards")
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(OptionError) as err:
        create_dataset("shards", DataConfig(shards, shard_cache=afile))
    assert str(err.value) == f"--shard_cache {afile}: not a folder"
    with pytest.raises(OptionError) as err:
        create_dataset("shards", DataConfig(shards, shard_cache=afile / "sub"))
    assert str(err.value) == f"--shard_cache {afile / 'sub'}: cannot be created (Not a directory)"
    argv = [*tiny_args(shards, tmp_path / "runs", "sc"), "--dataset_mode", "shards", "--max_steps", "1",
            "--shard_cache", str(afile)]
    assert train_driver.main(argv) == 1
    err_text = capsys.readouterr().err
    assert err_text == f"train.py: error: --shard_cache {afile}: not a folder\n"
    assert not (tmp_path / "runs" / "sc").exists()


def test_a_bad_sample_is_named_by_its_original_file_beside_its_member(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 4})
    bad = source / "train" / "002.png"
    bad.write_bytes(bad.read_bytes()[:-40])   # the header reads, the pixels do not
    shards = make_shard_set(source, tmp_path / "shards", samples_per_shard=10)
    member = f"{shards / 'train-000000.tar'}:00000002.image.png: "
    with caplog.at_level(logging.WARNING):
        kept = create_dataset("shards", DataConfig(shards, shard_cache=tmp_path / "c", skip_bad_images=True))
    assert len(kept) == 3
    assert f"skipping bad sample: train/002.png: {member}" in caplog.text
    dataset = create_dataset("shards", DataConfig(shards, shard_cache=tmp_path / "c", preprocess="none"))
    with pytest.raises(DataError) as err:
        dataset[2]
    assert str(err.value).startswith(f"train/002.png: {member}")
