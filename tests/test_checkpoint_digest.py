"""The content digest of every checkpoint (engine/checkpoint/digest.py): a byte flipped inside a
tensor's data loads without error in torch.load (its zip CRCs are not checked: the oracle below),
and every read of ours refuses it with one line; the drivers exit 1 with that line, no traceback,
and the run folder untouched. Undamaged files, files of earlier versions (no digest) and the
reference's files load."""
from __future__ import annotations

import logging
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

import export
import serve
import test as test_driver
import train
import translate
from engine.checkpoint import (FULL_FORMAT, GENERATOR_FORMAT, DamagedCheckpointError, auto_resume_label,
                               find_generator, load_file, write_generator)
from engine.checkpoint import files as files_module
from engine.checkpoint.digest import DIGEST_KEY, content_digest
from engine.checkpoint.format import full_checkpoint_problem
from models.networks import architecture_from_options
from scripts import reseal_checkpoint as reseal_script
from tests.pipeline_helpers import assert_same, make_aligned_dataset, tiny_args, without

V3 = Path(__file__).parent / "fixtures" / "checkpoints_v3" / "v3"   # written at 75d7cda (fixtures/README.md)


def damaged_line(path: Path) -> str:
    return (f"{path}: damaged (digest mismatch: its contents changed after it was written, on disk, in a copy or "
            "by an edit); use another checkpoint (another --epoch, e.g. best) or copy it again; a file you edited on "
            f"purpose: python scripts/reseal_checkpoint.py {path}")


def flip_tensor_byte(path: Path) -> str:
    """Flip the lowest bit of a byte in the middle of the largest tensor's data, in place; the
    archive still opens (only the member's CRC, which nobody checks, disagrees). The member."""
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    assert member.compress_type == zipfile.ZIP_STORED
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, member.header_offset + 26)   # the local header
    raw[member.header_offset + 30 + name_len + extra_len + member.file_size // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    return member.filename


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataroot, checkpoints_dir) of a tiny 2-step run: ``tiny/`` holds latest and 1 (end of
    epoch 1), each a full checkpoint and a generator file."""
    root = tmp_path_factory.mktemp("digest")
    data = make_aligned_dataset(root / "data", {"train": 2, "test": 1})
    assert train.main(tiny_args(data, root / "ck") + ["--max_steps", "2", "--save_epoch_freq", "1"]) == 0
    return data, root / "ck"


@pytest.fixture
def run(trained: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trained run that a test may damage: (dataroot, checkpoints_dir)."""
    data, ck = trained
    shutil.copytree(ck, tmp_path / "ck")
    return data, tmp_path / "ck"


@pytest.mark.parametrize("name", ["latest.pt", "latest_net_G.pt"])
def test_a_flipped_byte_loads_in_torch_but_not_in_ours(run, name: str) -> None:
    path = run[1] / "tiny" / name
    before = torch.load(path, weights_only=True)
    assert load_file(path)[DIGEST_KEY] == before[DIGEST_KEY]   # undamaged: loads, and checks
    flip_tensor_byte(path)
    after = torch.load(path, weights_only=True)   # the oracle: torch notices nothing
    with pytest.raises(AssertionError):
        assert_same(before, after)   # ... and yet a weight changed
    with pytest.raises(DamagedCheckpointError) as err:
        load_file(path)
    assert str(err.value) == damaged_line(path)


def test_the_recorded_digest_is_the_digest_of_the_file_as_loaded(run) -> None:
    """What is written is what a read computes: the same on the payload in memory, once the
    file is loaded back, and on the file's weights moved to another dtype and back."""
    for name in ("latest.pt", "latest_net_G.pt", "1.pt", "1_net_G.pt"):
        saved = torch.load(run[1] / "tiny" / name, weights_only=True)
        assert saved["format"] in (FULL_FORMAT, GENERATOR_FORMAT)
        assert saved[DIGEST_KEY] == content_digest(saved) and saved[DIGEST_KEY].startswith("sha256:")
        nets = saved["nets"]["G"] if "nets" in saved else saved["net_G"]
        nets.update({k: v.double().float() for k, v in nets.items() if v.dtype == torch.float32})
        assert content_digest(saved) == saved[DIGEST_KEY]


def test_the_digest_reads_values_not_layouts(tmp_path: Path) -> None:
    """Views (a transpose, a slice sharing a storage) and bf16 (no numpy dtype) digest as their
    values, before and after a save/load round trip; a changed value, dtype or shape changes it."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    payload = {"t": base.t(), "slice": base[1:3, ::2], "bf16": base.to(torch.bfloat16), "empty": torch.zeros(0),
               "scalar": torch.tensor(3), "flag": torch.tensor([True, False]), "plain": [1, 2.5, "x", None, (3,)]}
    digest = content_digest(payload)
    assert content_digest({**payload, "t": base.t().contiguous(), "slice": base[1:3, ::2].clone()}) == digest
    torch.save(payload, tmp_path / "p.pt")
    assert content_digest(torch.load(tmp_path / "p.pt", weights_only=True)) == digest
    assert content_digest({**payload, DIGEST_KEY: "sha256:whatever"}) == digest   # not part of itself
    one_value = base.t().clone()
    one_value[0, 0] = 0.5
    changed = [{"t": one_value}, {"t": base.view(torch.int32).t()},   # the very same bytes as another dtype
               {"t": base.t().reshape(2, 12)}, {"plain": [1, 2.5, "x", None, [3]]},
               {"plain": [1, 2.5000001, "x", None, (3,)]}]
    for change in changed:
        assert content_digest({**payload, **change}) != digest, change


def test_a_current_format_file_without_its_digest_is_refused(run) -> None:
    path = run[1] / "tiny" / "latest_net_G.pt"
    saved = torch.load(path, weights_only=True)
    del saved[DIGEST_KEY]
    torch.save(saved, path)
    with pytest.raises(DamagedCheckpointError, match=r"damaged \(no digest in a pix2pix-app/G/4 file"):
        find_generator(run[1] / "tiny", "latest", architecture_from_options)
    # --continue_train auto passes over a full file without its digest, and says that is why.
    full = run[1] / "tiny" / "latest.pt"
    saved = torch.load(full, weights_only=True)
    del saved[DIGEST_KEY]
    torch.save(saved, full)
    assert full_checkpoint_problem(full) == "damaged: no digest in a pix2pix-app/full/4 file"


def test_files_of_earlier_versions_and_the_reference_load_and_say_so_once(tmp_path: Path, run,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The version 3 fixture (written before the digest) and a version 4 file made version 3
    again load unchecked, with one info line per file however often they are read; the
    upgrade keeps what they recorded (their execution: not refilled from their options)."""
    shutil.copytree(V3, tmp_path / "v3")
    made = run[1] / "tiny"
    for name, kind in (("latest.pt", "full"), ("latest_net_G.pt", "G")):
        saved = torch.load(made / name, weights_only=True)
        del saved[DIGEST_KEY]
        saved["format"] = f"pix2pix-app/{kind}/3"
        torch.save(saved, made / name)
    reference = tmp_path / "ref" / "latest_net_G.pth"
    reference.parent.mkdir()
    torch.save(torch.load(made / "1_net_G.pt", weights_only=True)["net_G"], reference)
    with caplog.at_level(logging.INFO):
        for folder in (tmp_path / "v3", made):
            raw = torch.load(folder / "latest_net_G.pt", weights_only=True)
            for use_ema in (True, False, True):
                saved = find_generator(folder, "latest", lambda options: pytest.fail("v3 has specs"), use_ema)
                assert saved.spec == raw["spec"] and saved.execution.as_dict() == raw["execution"]
                assert_same(saved.state_dict, raw["net_G"])
            assert load_file(folder / "latest.pt")["format"].endswith("/3")
        assert find_generator(reference.parent, "latest", architecture_from_options).is_reference
        load_file(reference)
    notes = [r.getMessage() for r in caplog.records if "carries no content digest" in r.getMessage()]
    expected = {str(p) for p in (tmp_path / "v3" / "latest_net_G.pt", tmp_path / "v3" / "latest.pt",
                                 made / "latest_net_G.pt", made / "latest.pt", reference)}
    assert len(notes) == len(expected) and {n.split(" carries")[0] for n in notes} == expected
    assert all(r.levelno == logging.INFO for r in caplog.records if "digest" in r.getMessage())


def test_a_version_3_checkpoint_resumes_and_is_saved_with_a_digest(tmp_path: Path) -> None:
    shutil.copytree(V3, tmp_path / "ck" / "v3")
    data = make_aligned_dataset(tmp_path / "data", {"train": 2, "test": 1})
    args = without(tiny_args(data, tmp_path / "ck", "v3"), "--ngf", "--ndf")
    assert train.main([*args, "--continue_train", "--max_steps", "2"]) == 0
    saved = load_file(tmp_path / "ck" / "v3" / "latest.pt")
    assert saved["format"] == FULL_FORMAT and saved["state"]["step"] == 2
    assert saved[DIGEST_KEY] == content_digest(saved)


def test_a_resume_from_a_damaged_checkpoint_is_one_line_and_writes_nothing(run, capsys, caplog) -> None:
    data, ck = run
    damaged = ck / "tiny" / "latest.pt"
    flip_tensor_byte(damaged)
    before = snapshot(ck)
    args = tiny_args(data, ck) + ["--max_steps", "4"]
    assert train.main([*args, "--continue_train"]) == 1
    err = capsys.readouterr().err
    assert err == (f"train.py: error: {damaged_line(damaged)}; the newest loadable checkpoint is 1.pt: resume "
                   "with --continue_train --epoch 1\n")
    assert snapshot(ck) == before
    # --continue_train auto takes the newest checkpoint that is whole, with a warning saying why.
    with caplog.at_level(logging.WARNING, logger="engine.checkpoint.resume"):
        assert auto_resume_label(ck / "tiny", "latest", has_reference_files=False) == "1"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{damaged} does not load (damaged: digest mismatch); resuming from 1.pt, the newest "
        "checkpoint that does"]


def test_an_auto_resume_checks_the_file_it_chooses_once_and_a_changed_file_again(run, monkeypatch) -> None:
    """--continue_train auto checks the digest of the file it resumes from; the resume that then
    loads it does not hash it a second time, and a file written in between is checked anew."""
    data, ck = run
    latest = ck / "tiny" / "latest.pt"
    checked: list[Path] = []
    real_check = files_module.check_digest
    monkeypatch.setattr(files_module, "check_digest", lambda contents, path: (checked.append(path),
                                                                              real_check(contents, path)))
    assert train.main(tiny_args(data, ck) + ["--max_steps", "3", "--continue_train", "auto"]) == 0
    assert checked.count(latest) == 1
    # The resumed run wrote latest.pt again: a load now checks it, and what it read is what was sealed.
    contents = load_file(latest)
    assert checked.count(latest) == 2 and contents["state"]["step"] == 3
    assert contents[DIGEST_KEY] == content_digest(contents)
    assert load_file(latest) is not None and checked.count(latest) == 2   # unchanged: not hashed again
    flip_tensor_byte(latest)
    with pytest.raises(DamagedCheckpointError):
        load_file(latest)


def test_inference_drivers_refuse_a_damaged_generator_with_one_line(run, tmp_path: Path, capsys) -> None:
    data, ck = run
    damaged = ck / "tiny" / "latest_net_G.pt"
    flip_tensor_byte(damaged)
    before = snapshot(ck)
    out = tmp_path / "out"
    common = ["--name", "tiny", "--checkpoints_dir", str(ck), "--gpu_ids", "-1"]
    drivers = {"test.py": lambda: test_driver.main([*common, "--dataroot", str(data), "--load_size", "32",
                                                    "--crop_size", "32", "--results_dir", str(out)]),
               "translate.py": lambda: translate.main([*common, "--input", str(data / "test"), "--output", str(out)]),
               "export.py": lambda: export.main([*common, "--output", str(out / "g.onnx")]),
               "serve.py": lambda: serve.main([*common, "--port", "65000"])}
    for program, main in drivers.items():
        assert main() == 1, program
        assert capsys.readouterr().err == f"{program}: error: {damaged_line(damaged)}\n"
        assert snapshot(ck) == before and not out.exists(), program


def test_a_generator_written_outside_training_is_sealed_too(tmp_path: Path) -> None:
    """Every writer of ours seals its file: the generator files a test or a tool writes too."""
    net = torch.nn.Conv2d(1, 1, 3)
    write_generator(tmp_path / "latest_net_G.pt", net.state_dict(), {"name": "x"}, {"amp": "none"})
    saved = load_file(tmp_path / "latest_net_G.pt")
    assert saved["format"] == GENERATOR_FORMAT and saved[DIGEST_KEY] == content_digest(saved)


def test_a_file_edited_on_purpose_is_refused_until_resealed(run, tmp_path: Path, capsys) -> None:
    """An edit made with torch.load / torch.save (a changed option) reads as damage; the script
    the message names seals it anew, after which it loads with the edit; a foreign file or one of
    an earlier version (no digest to renew) is one line, exit 1, and left as it was."""
    data, ck = run
    path = ck / "tiny" / "latest_net_G.pt"
    edited = torch.load(path, weights_only=True)
    edited["options"]["dataroot"] = "/elsewhere"
    torch.save(edited, path)
    with pytest.raises(DamagedCheckpointError):
        load_file(path)
    assert reseal_script.main([str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: sealed ({GENERATOR_FORMAT})\n"
    loaded = load_file(path)
    assert loaded["options"]["dataroot"] == "/elsewhere" and loaded[DIGEST_KEY] == content_digest(loaded)
    assert_same(loaded["net_G"], edited["net_G"])
    foreign = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    old = next(V3.glob("*_net_G.pt"))
    for path, why in ((foreign, "not a checkpoint or generator file of this program"),
                      (old, "carries no digest and loads as it is")):
        before = path.read_bytes()
        assert reseal_script.main([str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"reseal_checkpoint.py: error: {path}: ") and why in err and err.count("\n") == 1
        assert path.read_bytes() == before
