"""Tar shards (datasets/make_shards.py, --dataset_mode shards) give exactly the folder's samples.

The oracle is the folder dataset itself: every sample, under the same augmentation seeds, must
be equal tensor for tensor, read from disk or over HTTP from a loopback server.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from data import DataConfig, DataError, create_dataset
from data.shard_format import ShardLimits
from data.transforms import SampleKey, sample_seed
from datasets.make_shards import main as make_shards_main, make_shards
from tests.clone_env import clone_env
from tests.pipeline_helpers import FIXTURE_FACADES, make_aligned_dataset
from tests.shard_helpers import make_shard_set, serve_folder

# (source mode, DataConfig fields): JPEG facades pairs, resized and cropped with random flips.
CASES = {
    "aligned": ("aligned", {"preprocess": "resize_and_crop", "load_size": 72, "crop_size": 64}),
    "aligned_BtoA_cached": ("aligned", {"direction": "BtoA", "preprocess": "scale_width_and_crop",
                                        "load_size": 80, "crop_size": 32, "cache": True}),
    "colorization": ("colorization", {"input_nc": 1, "output_nc": 2, "load_size": 40, "crop_size": 32}),
    "single": ("single", {"preprocess": "none", "input_nc": 1}),
}


def samples(dataset, epoch: int = 1) -> list[dict]:
    return [dataset[SampleKey(i, sample_seed(5, epoch, i))] for i in range(len(dataset))]


def assert_same_samples(folder: list[dict], shards: list[dict]) -> None:
    assert len(folder) == len(shards)
    for a, b in zip(folder, shards):
        # The name relative to the dataroot: phase/file.
        assert Path(b["A_paths"]).parts == Path(a["A_paths"]).parts[-2:]
        for key in ("A", "B"):
            if key in a:
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), (a["A_paths"], key)


@pytest.fixture(scope="module")
def facade_shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("facade_shards")
    return {mode: make_shard_set(FIXTURE_FACADES, out / mode, mode, phases=("train", "test"))
            for mode in ("aligned", "colorization", "single")}


@pytest.mark.parametrize("case", CASES)
def test_shard_set_gives_the_folder_samples_pixel_for_pixel(case: str, facade_shards: dict[str, Path],
                                                            tmp_path: Path) -> None:
    mode, fields = CASES[case]
    for phase in ("train", "test"):
        folder = create_dataset(mode, DataConfig(FIXTURE_FACADES, phase=phase, **fields))
        shards = create_dataset("shards", DataConfig(facade_shards[mode], phase=phase, shard_cache=tmp_path,
                                                     **fields))
        assert type(shards) is type(folder)
        assert shards.sample_sizes() == folder.sample_sizes()   # from the index, before decoding
        assert_same_samples(samples(folder), samples(shards))


def test_pairs_stay_together_stored_unchanged_in_shards_of_the_chosen_size(facade_shards: dict[str, Path]) -> None:
    root = facade_shards["aligned"]
    originals = sorted((FIXTURE_FACADES / "train").iterdir(), key=str)
    tars = sorted(root.glob("train-*.tar"))
    assert [t.name for t in tars] == ["train-000000.tar", "train-000001.tar"]  # 4 samples, 3 a shard
    members = []
    for path in tars:
        with tarfile.open(path) as tar:
            members += [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    # One member per sample: the A|B file, byte for byte, under the sample's key.
    assert [name for name, _ in members] == [f"{i:08d}.image.jpg" for i in range(4)]
    assert [data for _, data in members] == [p.read_bytes() for p in originals]


def test_shard_mb_closes_a_shard_once_it_holds_that_much(tmp_path: Path) -> None:
    one_image = (FIXTURE_FACADES / "train" / "1.jpg").stat().st_size
    index = make_shards(FIXTURE_FACADES, "aligned", tmp_path, ["train"],
                        ShardLimits(max_samples=100, max_bytes=one_image + 1))["train"]
    sizes = [(FIXTURE_FACADES / "train" / n).stat().st_size for n in ("1.jpg", "10.jpg", "100.jpg", "101.jpg")]
    expected, held = [], None
    for size in sizes:   # a new shard starts once the open one holds max_bytes or more
        if held is None or held >= one_image + 1:
            expected.append(0)
            held = 0
        expected[-1] += 1
        held += size
    assert [s["nsamples"] for s in index["shardlist"]] == expected


def test_read_over_http_from_a_loopback_server(facade_shards: dict[str, Path], tmp_path: Path) -> None:
    mode, fields = CASES["aligned"]
    folder = samples(create_dataset(mode, DataConfig(FIXTURE_FACADES, **fields)))
    cache = tmp_path / "cache"
    with serve_folder(facade_shards["aligned"]) as url:
        remote = create_dataset("shards", DataConfig(url, shard_cache=cache, **fields))
        assert remote.cfg.dataroot == url
        assert_same_samples(folder, samples(remote))
        copies = sorted(cache.glob("*.tar"))
        assert [p.stat().st_size for p in copies] == \
            [p.stat().st_size for p in sorted(facade_shards["aligned"].glob("train-*.tar"))]
        assert not any(p.is_symlink() for p in copies)   # downloaded, not linked
        copies[0].write_bytes(copies[0].read_bytes()[:5000])   # a download cut short
        again = create_dataset("shards", DataConfig(url, shard_cache=cache, **fields))
        assert_same_samples(folder, samples(again))


def test_url_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    with serve_folder(tmp_path) as url:
        with pytest.raises(DataError) as err:
            create_dataset("shards", DataConfig(url + "/missing", shard_cache=tmp_path))
    assert str(err.value) == f"{url}/missing/train.json: HTTP error 404 (File not found)"


def test_skip_bad_images_and_max_dataset_size_as_for_the_folder(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 5})
    bad = source / "train" / "002.png"
    bad.write_bytes(bad.read_bytes()[:-40])   # the header reads, the pixels do not
    root = make_shard_set(source, tmp_path / "shards")
    with pytest.raises(DataError, match="002.image.png"):
        samples(create_dataset("shards", DataConfig(root, shard_cache=tmp_path, preprocess="none")))
    for extra in ({"skip_bad_images": True}, {"skip_bad_images": True, "max_dataset_size": 3}):
        cfg = dict(preprocess="none", **extra)
        with caplog.at_level(logging.WARNING):
            folder = create_dataset("aligned", DataConfig(source, **cfg))
            shards = create_dataset("shards", DataConfig(root, shard_cache=tmp_path, **cfg))
        assert shards.paths == [str(Path(p).relative_to(source)) for p in folder.paths]
        assert len(shards) == (3 if "max_dataset_size" in extra else 4)
        assert_same_samples(samples(folder), samples(shards))
    assert "skipping bad sample" in caplog.text


def test_missing_index_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.json: no shard index .*make_shards\.py"):
        create_dataset("shards", DataConfig(tmp_path))


def test_make_shards_refuses_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert make_shards_main(["--dataroot", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: --dataroot does not exist" in err and err.count("\n") == 1
    assert make_shards_main(["--dataroot", str(FIXTURE_FACADES), "--output", str(tmp_path / "o"),
                             "--shard_mb", "0"]) == 2
    assert "--shard_mb" in capsys.readouterr().err
    out = tmp_path / "made"
    assert make_shards_main(["--dataroot", str(FIXTURE_FACADES), "--output", str(out)]) == 0
    assert "train: 4 samples in 1 shard (" in capsys.readouterr().out
    before = (out / "train.json").read_bytes()
    assert make_shards_main(["--dataroot", str(FIXTURE_FACADES), "--output", str(out)]) == 2
    assert "train.json: already exists" in capsys.readouterr().err
    assert (out / "train.json").read_bytes() == before


def test_a_failed_write_leaves_no_index_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 4})
    real = Path.read_bytes

    def fail_on_third(self: Path) -> bytes:
        if self.name == "002.png":
            raise OSError(f"{self}: input/output error")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", fail_on_third)
    with pytest.raises(OSError):
        make_shard_set(source, tmp_path / "out", samples_per_shard=1)
    assert sorted(tmp_path.iterdir()) == [source]   # no output folder, no staging folder left


def test_image_blob_errors_name_the_member() -> None:
    from data.image_io import ImageBlob, open_image
    with pytest.raises(DataError, match=r"^set/train-000000\.tar:00000001\.image\.png: empty"):
        open_image(ImageBlob("set/train-000000.tar:00000001.image.png", b""))
    assert Image.open(FIXTURE_FACADES / "train" / "1.jpg").size == \
        ImageBlob("x", (FIXTURE_FACADES / "train" / "1.jpg").read_bytes()).size()


def test_make_shards_runs_as_a_script_from_anywhere(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "datasets" / "make_shards.py"
    done = subprocess.run([sys.executable, str(script), "--dataroot", str(FIXTURE_FACADES), "--output", "out",
                           "--phases", "test"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=clone_env())
    assert done.returncode == 0, done.stderr
    assert "test: 3 samples in 1 shard" in done.stdout and (tmp_path / "out" / "test.json").is_file()
