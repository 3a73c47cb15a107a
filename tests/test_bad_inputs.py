"""Bad inputs through the drivers, table-driven (issue 12).

Each case breaks one thing (a dataset file, an option, a checkpoint) in a copy of a small
dataset and of a trained experiment, runs train.py or test.py as a user would, and checks
what a user relies on: a non-zero exit, exactly one line on stderr that names the culprit, no
traceback, and the experiment folder exactly as it was (same files, same bytes, same times).

The unreadable file: the tests run as root, whom chmod 000 does not stop, so that case runs
train.py as the unprivileged user 'nobody' (uid 65534), for whom the
file really is unreadable (a forked child that drops its privileges).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from models.networks import build_discriminator, build_generator
from tests.test_ddp import train_args, write_pairs
from tests.test_reference_compat import make_reference_state


@dataclass
class Ctx:
    data: Path   # a fresh copy of the pairs: train/ and test/, 8 images each
    ckpt: Path   # checkpoints_dir holding 'exp', trained one step

    @property
    def exp(self) -> Path:
        return self.ckpt / "exp"

    def train(self, *extra: str) -> list[str]:
        return ["train", *train_args(self.data, self.ckpt, "exp", "--batch_size", "2", "--continue_train", *extra)]

    def test(self, *extra: str) -> list[str]:
        return ["test", "--dataroot", str(self.data), "--checkpoints_dir", str(self.ckpt), "--name", "exp",
                "--gpu_ids", "-1", "--num_threads", "0", "--results_dir", str(self.ckpt / "results"), *extra]


def bomb_png(path: Path, side: int = 30000) -> None:
    """A real, valid PNG of side x side 1-bit pixels (all black): 110 KB on disk, 900 million
    pixels, 2.7 GB once decoded to RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" * (1 + side // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def empty(name: str) -> Callable[[Ctx], tuple[list[str], str]]:
    def setup(c: Ctx) -> tuple[list[str], str]:
        (c.data / "train" / name).write_bytes(b"")
        return c.train(), name
    return setup


def file_case(write: Callable[[Path], None], name: str, *extra: str) -> Callable[[Ctx], tuple[list[str], str]]:
    def setup(c: Ctx) -> tuple[list[str], str]:
        write(c.data / "train" / name)
        return c.train(*extra), name
    return setup


def options(*flags: str, culprit: str) -> Callable[[Ctx], tuple[list[str], str]]:
    return lambda c: (c.train(*flags), culprit)


def _truncate(path: Path) -> None:
    shutil.copy(path.parent / "000.png", path)
    path.write_bytes(path.read_bytes()[:200])


def _symlink_loop(c: Ctx) -> tuple[list[str], str]:
    train = c.data / "train"
    os.symlink(train / "loop_b.png", train / "loop_a.png")
    os.symlink(train / "loop_a.png", train / "loop_b.png")
    return c.train(), "loop_a.png"


def _folder_loop(c: Ctx) -> tuple[list[str], str]:
    os.symlink(c.data / "train", c.data / "train" / "again")
    return c.train(), "symbolic link loop"


def _smaller_than_crop(c: Ctx) -> tuple[list[str], str]:
    return c.train("--preprocess", "crop", "--crop_size", "64", "--load_size", "64"), "smaller than --crop_size 64"


def _unsafe_pickle(c: Ctx) -> tuple[list[str], str]:
    torch.save({"nets": Ctx}, c.exp / "7.pt")  # a class object: loading it would run code
    return c.train("--epoch", "7"), "7.pt: refused as unsafe"


def _generator_only(c: Ctx) -> tuple[list[str], str]:
    shutil.copy(c.exp / "latest_net_G.pt", c.exp / "5.pt")
    return c.train("--epoch", "5"), "5.pt: not a full training checkpoint"


def _truncated_checkpoint(c: Ctx) -> tuple[list[str], str]:
    latest = c.exp / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:3000])
    return c.train(), "latest.pt: not a readable checkpoint"


def _reference_with_other_width(c: Ctx) -> tuple[list[str], str]:
    # The reference implementation's 3_net_G.pth / 3_net_D.pth, trained with --ngf 8 --ndf 8.
    G = build_generator("resnet_6blocks", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=True)
    D = build_discriminator("basic", input_nc=6, ndf=8, n_layers=3, norm="batch")
    torch.save(make_reference_state(G, "resnet_6blocks", 6, "batch"), c.exp / "3_net_G.pth")
    torch.save(make_reference_state(D, "basic", 3, "batch"), c.exp / "3_net_D.pth")
    return c.train("--epoch", "3"), "3_net_G.pth"


def _unreadable_as_nobody(c: Ctx) -> tuple[list[str], str]:
    target = c.data / "train" / "secret.png"
    shutil.copy(c.data / "train" / "000.png", target)
    target.chmod(0)
    return ["nobody", *c.train()[1:]], "secret.png"


def _unreadable_folder_as_nobody(c: Ctx) -> tuple[list[str], str]:
    (c.data / "train").chmod(0o700)
    return ["nobody", *c.train()[1:]], str(c.data)


CASES: dict[str, Callable[[Ctx], tuple[list[str], str]]] = {
    # files
    "empty_file": empty("000.png"),
    "truncated_file": file_case(_truncate, "001.png", "--cache_dataset"),
    "not_an_image": file_case(lambda p: p.write_text("hello, not a picture\n"), "002.png"),
    # A file without an image extension (notes.txt, Thumbs.db) is no input: the listing leaves it
    # out in every mode (tests/test_data_stray_files.py).
    "odd_width_for_aligned": file_case(
        lambda p: Image.new("RGB", (65, 32)).save(p), "odd.png"),
    "decompression_bomb": file_case(bomb_png, "bomb.png"),
    "symlink_loop": _symlink_loop,
    "folder_symlink_loop": _folder_loop,
    "dangling_symlink": file_case(lambda p: os.symlink(p.parent / "vanished.png", p), "gone.png"),
    "fifo_named_png": file_case(lambda p: os.mkfifo(p), "pipe.png"),
    "unreadable_file": _unreadable_as_nobody,
    "unreadable_folder": _unreadable_folder_as_nobody,
    "name_with_spaces": empty("my holiday photo.png"),
    "unicode_name": empty("façade_画像_ß.png"),
    "html_name": empty("<img src=x onerror=alert(1)>&amp;.png"),
    "image_smaller_than_crop": _smaller_than_crop,
    "missing_dataroot": lambda c: (["train", *train_args(c.data / "nowhere", c.ckpt, "exp", "--continue_train")],
                                   "nowhere"),
    "dataroot_is_a_file": lambda c: (["train", *train_args(c.data / "train" / "000.png", c.ckpt, "exp",
                                                           "--continue_train")], "000.png"),
    "no_phase_folder": options("--phase", "val", culprit="val"),
    # options
    "crop_above_load": options("--preprocess", "resize_and_crop", "--load_size", "32", "--crop_size", "64",
                               culprit="--crop_size 64"),
    "size_not_fitting_generator": options("--netG", "unet_256", "--crop_size", "100", "--load_size", "100",
                                          "--preprocess", "crop", culprit="--crop_size 100"),
    "zero_learning_rate": options("--lr", "0", culprit="--lr"),
    "zero_batch": options("--batch_size", "0", culprit="--batch_size"),
    "unknown_generator": options("--netG", "unet_512", culprit="--netG"),
    "gradient_penalty_with_synced_bn": options("--norm", "syncbatch", "--gan_mode", "wgangp",
                                               culprit="--gan_mode wgangp"),
    "colorization_with_rgb_input": options("--model", "colorization", "--input_nc", "3", culprit="--model colorization"),
    "gpu_without_cuda": options("--gpu_ids", "0", culprit="--gpu_ids 0"),
    "continue_train_bad_value": options("--continue_train", "always", culprit="--continue_train"),
    "suffix_unknown_option": options("--suffix", "{nope}", culprit="--suffix"),
    "zero_dist_timeout": options("--dist_timeout", "0", culprit="--dist_timeout"),
    "zero_print_freq": options("--print_freq", "0", culprit="--print_freq"),
    "negative_epochs": options("--n_epochs", "-1", culprit="--n_epochs"),
    # checkpoints
    "other_width": options("--ngf", "8", culprit="--ngf"),
    "other_discriminator_depth": options("--netD", "n_layers", "--n_layers_D", "2", culprit="--netD basic"),
    "other_model_type": options("--model", "colorization", "--dataset_mode", "colorization", culprit="--input_nc"),
    "generator_file_as_training_checkpoint": _generator_only,
    "truncated_checkpoint": _truncated_checkpoint,
    "unsafe_pickle": _unsafe_pickle,
    "missing_checkpoint": options("--epoch", "9", culprit="9.pt"),
    "reference_files_with_other_width": _reference_with_other_width,
    "test_py_other_norm": lambda c: (c.test("--norm", "instance"), "--norm"),
    "test_py_unknown_name": lambda c: (c.test("--name", "nobody_trained_this"), "nobody_trained_this"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = write_pairs(tmp_path_factory.mktemp("bad_pairs"))
    ckpt = tmp_path_factory.mktemp("bad_ckpt")
    assert train_script.main(train_args(data, ckpt, "exp", "--batch_size", "2", "--max_steps", "1")) == 0
    return data, ckpt


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_as_nobody(argv: list[str], cwd: Path) -> tuple[int, str]:
    """train.main(argv) in a forked child that has become 'nobody' (the Python binary lives
    in root's home, so a fresh interpreter could not start as that user)."""
    err_file = cwd / "stderr.txt"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = train_script.main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 98
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err_file.read_text()


def run_driver(argv: list[str], capsys: pytest.CaptureFixture[str], cwd: Path) -> tuple[int, str]:
    driver, rest = argv[0], argv[1:]
    if driver == "nobody":
        return run_as_nobody(rest, cwd)
    capsys.readouterr()
    try:
        code = (train_script if driver == "train" else test_script).main(rest)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def world_readable_copy(trained: tuple[Path, Path], prefix: str) -> tuple[Path, Ctx]:
    """A fresh copy of the trained pairs and checkpoints for one case, readable by everyone (the
    'nobody' cases read them); the caller removes the returned folder."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    ctx = Ctx(work / "pairs", work / "ckpt")
    shutil.copytree(trained[0], ctx.data)
    shutil.copytree(trained[1], ctx.ckpt)
    for folder, _, files in os.walk(work):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return work, ctx


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_changes_nothing(case: str, trained: tuple[Path, Path], capsys,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    work, ctx = world_readable_copy(trained, "bad_input_")
    try:
        argv, culprit = CASES[case](ctx)
        before = snapshot(ctx.exp)
        monkeypatch.chdir(work)
        code, err = run_driver(argv, capsys, work)
        lines = err.strip().splitlines()
        assert code not in (0, None), f"{case}: exit status {code}"
        assert len(lines) == 1, f"{case}: expected one line, got:\n{err}"
        assert culprit in lines[0], f"{case}: {culprit!r} not in {lines[0]!r}"
        assert "Traceback" not in err
        assert snapshot(ctx.exp) == before, f"{case}: the experiment folder changed"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_bomb_is_a_real_png_of_the_declared_size(tmp_path: Path) -> None:
    """Guards the decompression-bomb case: PIL reads the file as a valid 30000 x 30000 image."""
    bomb_png(tmp_path / "bomb.png")
    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
    try:
        with Image.open(tmp_path / "bomb.png") as img:
            assert img.size == (30000, 30000) and img.mode == "1"
            img.verify()  # the checksums and the compressed stream are intact
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    assert (tmp_path / "bomb.png").stat().st_size < 300_000
