"""The two programs that benchmarks/quality.py trains and tests: this project and, with
``--reference DIR``, a checkout of pytorch-CycleGAN-and-pix2pix run by its own interpreter.

Both get the same model, data and schedule flags; each is then scored by one scorer from the
PNG files its test.py wrote (``score_pages``), so neither program's own metrics are trusted.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT

# The model flags both programs understand (the reference's test.py needs them again), then
# the training flags.
ARCHITECTURE = ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "32", "--ndf", "32"]
MODEL = [*ARCHITECTURE, "--crop_size", "128", "--batch_size", "1", "--no_html", "--num_threads", "1",
         "--print_freq", "100", "--save_latest_freq", "100000000"]
# Flags only this project has: no display, decoded images kept, the CPU named, the seed.
OURS_ONLY = ["--display_id", "0", "--cache_dataset", "--gpu_ids", "-1"]


@dataclass(frozen=True)
class Programs:
    reference: Path | None          # a checkout of the reference (its train.py and test.py)
    reference_python: str           # the interpreter that has the reference's torchvision
    threads: int                    # intra-op threads of every run (two lanes share 2 cores)
    shim: Path                      # an empty ``wandb`` module: the reference imports it at the top

    def environment(self, reference: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONPATH")}
        env.update(OMP_NUM_THREADS=str(self.threads), CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
        if reference:
            env["PYTHONPATH"] = str(self.shim)
        return env

    def run(self, reference: bool, script: str, args: list[str], log: Path) -> None:
        """``script`` (train.py, test.py) of one program, run in its own folder, output to ``log``."""
        if reference:
            assert self.reference is not None
            python, folder = self.reference_python, self.reference
        else:
            python, folder = sys.executable, ROOT
        with open(log, "w") as out:
            subprocess.run([python, str(folder / script), *args], check=True, cwd=folder,
                           env=self.environment(reference), stdout=out, stderr=subprocess.STDOUT)


def train(programs: Programs, reference: bool, where: list[str], seed: int, data: list[str], flags: list[str],
          epochs: int, log: Path) -> None:
    """One training run. The reference saves only at the end of an epoch divisible by
    ``--save_epoch_freq`` (and has no ``--seed``: its runs are independent replicates)."""
    if reference:
        args = [*where, *MODEL, *data, *flags, "--save_epoch_freq", str(epochs)]
    else:
        args = [*where, *MODEL, *OURS_ONLY, *data, *flags, "--save_epoch_freq", "100000", "--seed", str(seed),
                "--overwrite"]
    programs.run(reference, "train.py", args, log)


def test(programs: Programs, reference: bool, where: list[str], data: list[str], test_flags: list[str],
         results: Path, log: Path) -> Path:
    """test.py of the program over the whole split; the folder of its written images."""
    size = ["--load_size", "128", "--crop_size", "128"]
    common = [*where, *data, *size, *test_flags, "--results_dir", str(results), "--num_test", "100000"]
    extra = [*ARCHITECTURE, "--num_threads", "0"] if reference else ["--num_threads", "1", "--gpu_ids", "-1"]
    programs.run(reference, "test.py", [*common, *extra], log)
    name = where[where.index("--name") + 1]
    phase = data[data.index("--phase") + 1]
    return results / name / f"{phase}_latest" / "images"


def pixel_scores(images: Path) -> dict[str, float]:
    """Mean L1 (/255), PSNR and SSIM of every ``*_fake_B.png`` against its ``*_real_B.png``."""
    import numpy as np
    from PIL import Image

    from reporting.metrics import mean_metrics, written_metrics

    fakes = sorted(images.glob("*_fake_B.png"))
    if not fakes:
        raise RuntimeError(f"{images}: no *_fake_B.png written")
    read = lambda p: np.asarray(Image.open(p).convert("RGB"))  # noqa: E731
    rows = [written_metrics(read(f), read(f.with_name(f.name.replace("_fake_B", "_real_B")))) for f in fakes]
    mean = mean_metrics(rows)
    return {"L1_255": mean["L1"] * 255, "PSNR": mean["PSNR"], "SSIM": mean["SSIM"], "images": len(rows)}
