"""Validation during training (inference/validation.py): it scores as test.py scores, and it
leaves training exactly as it was."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import test as test_driver
from data import create_dataset
from engine.distributed import Runtime
from engine.rng import capture_rng_state
from inference.validation import ValidationConfig, Validator, _rank_indices
from models import create_model
from models.load_generator import find_generator, load_into
from options.configs import data_config
from options.parse import parse_options
from reporting.images import to_uint8
from reporting.metrics import IMAGE, metric_names, reported_set_keys
from tests.pipeline_helpers import assert_same, make_aligned_dataset, tiny_args

CPU = Runtime(torch.device("cpu"))


def tiny_model(data: Path, ck: Path, *extra: str):
    opt = parse_options(tiny_args(data, ck) + ["--amp", "none", *extra], is_train=True)
    torch.manual_seed(0)
    return opt, create_model(opt, CPU)


def val_set(opt, phase: str = "val"):
    return create_dataset(opt.dataset_mode, replace(data_config(opt, phase=phase), no_flip=True))


def train_batches(opt, n: int):
    torch.manual_seed(5)
    return [{"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
             "A_paths": ["x"], "B_paths": ["x"]} for _ in range(n)]


def everything(model) -> dict:
    """Every tensor that training carries from one step to the next, and the RNG streams."""
    state = model.state_dict()
    rng = capture_rng_state()
    return {"state": state, "rng": rng, "numpy": np.random.get_state()[1].copy()}


@pytest.mark.parametrize("behaviour", [ValidationConfig(), ValidationConfig(eval_mode=True)],
                         ids=["paper_mode", "eval"])
def test_training_with_validation_is_bit_identical_to_training_without(tmp_path: Path, behaviour) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"val": 3})
    runs = []
    for validate in (False, True):
        # Batch norm and dropout in G (the paper's test mode keeps both in training behaviour).
        opt, model = tiny_model(data, tmp_path / "ck", "--norm", "batch", "--lr", "0.02")
        assert any(isinstance(m, torch.nn.Dropout) for m in model.nets["G"].modules())
        validator = Validator(val_set(opt), replace(behaviour, batch_size=2), CPU)
        torch.manual_seed(11)
        figures = []
        for batch in train_batches(opt, 3):
            model.set_input(batch)
            model.train_step()
            if validate:
                figures.append(validator(model))
        runs.append((everything(model), model.current_visuals(), figures))
    assert_same(runs[0][0], runs[1][0])
    assert_same(runs[0][1], runs[1][1])   # the pages still show the training images
    assert len(runs[1][2]) == 3 and runs[1][2][0] != runs[1][2][1]   # G moved, so did the scores


def test_figures_equal_test_py_on_the_same_checkpoint(tmp_path: Path) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2, "test": 3})
    ck = tmp_path / "ck"
    import train as train_driver
    assert train_driver.main(tiny_args(data, ck) + ["--max_steps", "2"]) == 0
    results = tmp_path / "results"
    train_args = tiny_args(data, ck)
    at = train_args.index("--display_id")
    test_args = train_args[:at] + train_args[at + 2:]   # a training-only flag
    assert test_driver.main(test_args + ["--eval", "--results_dir", str(results)]) == 0
    expected = json.loads((results / "tiny" / "test_latest" / "metrics.json").read_text())

    opt, model = tiny_model(data, ck)
    load_into(model.nets["G"], find_generator(ck / "tiny", "latest"))
    validator = Validator(val_set(opt, "test"), ValidationConfig(eval_mode=True), CPU)
    figures = validator(model)
    assert figures == pytest.approx(expected["mean"], rel=1e-9)
    assert validator.behaviour.startswith("batch norm: eval")

    # L1 and PSNR once more by hand, from test.py's written images.
    l1, psnr = [], []
    for stem in sorted(expected["images"]):
        fake, real = (np.asarray(__import__("PIL.Image").Image.open(
            results / "tiny" / "test_latest" / "images" / f"{stem}_{n}.png"), dtype=np.float64) / 255
                      for n in ("fake_B", "real_B"))
        l1.append(np.abs(fake - real).mean())
        psnr.append(10 * np.log10(1 / ((fake - real) ** 2).mean()))
    assert figures["L1"] == pytest.approx(np.mean(l1), rel=1e-6)   # float32 sums in the scorer
    assert figures["PSNR"] == pytest.approx(np.mean(psnr), rel=1e-6)


def test_max_images_takes_the_first_images_of_the_split(tmp_path: Path) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"val": 4})
    opt, model = tiny_model(data, tmp_path / "ck")
    two = Validator(val_set(opt), ValidationConfig(eval_mode=True, max_images=2), CPU)
    assert [k.index for k in two.loader(1).sampler] == [0, 1]
    first_two = make_aligned_dataset(tmp_path / "data2", {"val": 2})   # the same seed: the same 2 images
    opt2, _ = tiny_model(first_two, tmp_path / "ck")
    alone = Validator(val_set(opt2), ValidationConfig(eval_mode=True), CPU)
    assert two(model) == alone(model)


def test_rank_shares_are_whole_batches_disjoint_and_complete() -> None:
    shares = [_rank_indices(7, 2, rank, 3) for rank in range(3)]
    assert shares == [[0, 1, 6], [2, 3], [4, 5]]
    assert sorted(sum(shares, [])) == list(range(7))


def test_fid_reals_are_computed_once_and_cached_in_the_experiment_folder(tmp_path: Path, monkeypatch) -> None:
    import inference.validation as validation
    from reporting.fid import score_images
    data = make_aligned_dataset(tmp_path / "data", {"val": 3})
    opt, model = tiny_model(data, tmp_path / "ck")
    calls = []
    real_features = validation.inception_features
    monkeypatch.setattr(validation, "inception_features",
                        lambda x, device: calls.append(len(x)) or real_features(x, device))
    cfg = ValidationConfig(eval_mode=True, fid=True, batch_size=2)
    first = Validator(val_set(opt), cfg, CPU, cache_dir=tmp_path / "exp")(model)
    assert sorted(calls) == [1, 1, 2, 2]          # reals and fakes, two batches
    cached = list((tmp_path / "exp" / "val_fid").glob("real_*.npy"))
    assert len(cached) == 1
    calls.clear()
    again = Validator(val_set(opt), cfg, CPU, cache_dir=tmp_path / "exp")(model)   # a resumed run
    assert sorted(calls) == [1, 2]                # the fakes only
    assert again == first

    # The oracle: test.py's scorer on the same written pixels.
    view_fakes, view_reals = [], []
    net = Validator(val_set(opt), cfg, CPU).generator_copy(model)
    for i in range(3):
        item = val_set(opt)[i]
        with torch.no_grad():
            fake = net(item["A"].unsqueeze(0))[0]
        view_fakes.append(to_uint8(fake))
        view_reals.append(to_uint8(item["B"]))
    batch = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2)  # noqa: E731
    expected = score_images(batch(view_reals), batch(view_fakes)).as_metrics()
    assert {k: first[k] for k in expected} == pytest.approx(expected, rel=1e-6, abs=1e-9)


def _validate_on_ranks(rank: int, world_size: int, data: str, cache: str) -> dict[str, float]:
    opt, model = tiny_model(Path(data), Path(cache) / "ck", "--norm", "batch")
    if rank == 1:
        # Plain batch norm's running statistics drift apart between ranks; rank 0's count.
        for name, buffer in model.nets["G"].named_buffers():
            if name.endswith("running_mean"):
                buffer.add_(0.5)
    runtime = Runtime(torch.device("cpu"), rank, world_size)
    cfg = ValidationConfig(eval_mode=True, fid=True, batch_size=2)
    return Validator(val_set(opt), cfg, runtime, cache_dir=Path(cache) / f"world{world_size}")(model)


def test_two_ranks_split_the_set_and_give_the_figures_of_one(tmp_path: Path) -> None:
    from tests.distributed_helpers import run_distributed
    data = make_aligned_dataset(tmp_path / "data", {"val": 5})   # batches of 2: rank 0 takes 3 images, rank 1 two
    one = _validate_on_ranks(0, 1, str(data), str(tmp_path))
    two = run_distributed(_validate_on_ranks, 2, str(data), str(tmp_path), timeout_s=240)
    assert two[0] == two[1]
    assert set(one) == {*metric_names(IMAGE), *reported_set_keys()}
    pixels = metric_names(IMAGE)
    assert {k: two[0][k] for k in pixels} == pytest.approx({k: one[k] for k in pixels}, rel=1e-9)
    # Inception's float32 convolutions round differently with another batch make-up and thread count.
    assert two[0] == pytest.approx(one, rel=1e-5)
    assert not (tmp_path / "world2" / "val_fid").exists() or len(list((tmp_path / "world2" / "val_fid").iterdir())) == 1
