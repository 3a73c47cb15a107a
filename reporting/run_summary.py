"""What the compare page reads of a finished run: its options (``train_opt.txt``), its loss and
validation curves (``loss_log.jsonl``) and its test results (test.py's ``metrics.json`` and
images under ``<results_dir>/<name>/<phase>_<epoch>/``)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from reporting.loss_log import LOSS_LOG_NAME, LossLogError, loss_series, metric_series, read_loss_log
from reporting.metrics import SET, metric_names
from reporting.results_layout import results_folder
from util.errors import UserError

OPTIONS_FILE = "train_opt.txt"
# "                      lr: 0.0002   (typed)" as options/parse.py's format_options writes it
_OPTION_LINE = re.compile(r"^\s*([A-Za-z0-9_]+): (.*?)(?:   \(typed\))?$")
Points = list[tuple[float, float]]


class CompareError(UserError):
    """Input the compare page cannot use (one line naming the folder or file)."""


@dataclass
class RunSummary:
    name: str
    folder: Path
    options: dict[str, str]
    losses: dict[str, Points]          # loss name -> (epoch, value)
    validation: dict[str, Points]      # metric -> (epoch, value), from the run's validation records
    test_dir: Path
    test: dict = field(default_factory=dict)    # test.py's metrics.json

    @property
    def test_metrics(self) -> dict[str, float]:
        """The per-image means and, when test.py ran with --fid, the set's FID and KID."""
        ranked = metric_names(SET)   # not KID_std or the subset counts beside them
        return {**self.test.get("mean", {}), **{k: v for k, v in self.test.get("set", {}).items() if k in ranked}}

    def image_files(self, stem: str) -> dict[str, Path]:
        """Visual name (real_A, fake_B, real_B) -> file of one test image."""
        prefix = f"{stem}_"
        return {p.stem[len(prefix):]: p for p in sorted((self.test_dir / "images").glob(f"{glob_escape(stem)}_*.png"))
                if p.stem.startswith(prefix) and "_" in p.stem[len(prefix):]}


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def read_options(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _OPTION_LINE.match(line)
        if match:
            options[match.group(1)] = match.group(2)
    return options


def curves(records: list[dict]) -> tuple[dict[str, Points], dict[str, Points]]:
    """Loss points and validation points of a loss log, each against the fractional epoch."""
    validation = {name: splits["val"] for name, splits in metric_series(records).items() if "val" in splits}
    return loss_series(records), validation


def load_run(folder: Path, results_dir: Path, phase: str, epoch: str, load_iter: int = 0) -> RunSummary:
    folder = Path(folder)
    log_path, options_path = folder / LOSS_LOG_NAME, folder / OPTIONS_FILE
    if not folder.is_dir():
        raise CompareError(f"{folder}: no such folder")
    if not (log_path.is_file() or options_path.is_file()):
        raise CompareError(f"{folder}: not a training run (no {OPTIONS_FILE} or {LOSS_LOG_NAME})")
    try:
        records = read_loss_log(log_path) if log_path.is_file() else []
    except LossLogError as err:
        raise CompareError(str(err)) from None
    losses, validation = curves(records)
    options = read_options(options_path) if options_path.is_file() else {}
    name = folder.resolve().name
    test_dir = results_folder(results_dir, name, phase, epoch, load_iter)
    metrics_path = test_dir / "metrics.json"
    if not metrics_path.is_file():
        raise CompareError(f"{metrics_path}: no test results for run '{name}' (run: python test.py --name {name} "
                           f"--epoch {epoch}{f' --load_iter {load_iter}' if load_iter else ''} --results_dir {results_dir} ...)")
    try:
        test = json.loads(metrics_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CompareError(f"{metrics_path}: not JSON ({err.msg})") from None
    if not isinstance(test, dict):
        raise CompareError(f"{metrics_path}: expected test.py's metrics object")
    return RunSummary(name, folder, options, losses, validation, test_dir, test)


def differing_options(runs: list[RunSummary],
                      ignore: tuple[str, ...] = ("name", "explicit")) -> dict[str, list[str | None]]:
    """Option -> each run's value, for the options whose values are not all the same."""
    keys = sorted({k for run in runs for k in run.options} - set(ignore))
    table = {}
    for key in keys:
        values = [run.options.get(key) for run in runs]
        if len(set(values)) > 1:
            table[key] = values
    return table


def common_stems(runs: list[RunSummary]) -> list[str]:
    """Test images every run wrote (by file stem), in name order."""
    stems = [set(run.test.get("images", {})) for run in runs]
    return sorted(set.intersection(*stems)) if stems else []
