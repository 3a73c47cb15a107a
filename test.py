"""Run a trained generator over a dataset split and write a results page with metrics.

``python test.py --dataroot ./datasets/facades --name facades_pix2pix --direction BtoA``
"""
from __future__ import annotations

# Before anything imports torch: how OpenMP threads wait (spin on a quiet machine, sleep on an
# oversubscribed one; util/omp_env.py), unless the user set a policy.
from util.omp_env import set_omp_wait_policy

set_omp_wait_policy()

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from data import create_dataset
from data.loader import create_dataloader
from data.pixels import read_pixels
from data.results import as_stored, visual_bits
from models import create_model
from models.load_generator import SavedGenerator, find_generator, load_into, options_for, trained_option
from inference.generator import run_folder
from inference.split_inference import batch_size_for, prepare_generator, seed_batch, training_inputs
from inference.translator import check_bn_eval_used
from options.base import Options
from options.configs import data_config, experiment_dir
from options.parse import parse_options
from options.validate import first_problem
from engine.checkpoint import load_label
from engine.distributed import single_process_runtime, unwrap
from reporting.fid import extractor_path
from reporting.html import ResultRow, write_results_page
from reporting.result_files import save_test_image
from reporting.results_layout import ResultNames, results_folder
from reporting.logs import setup_logging
from reporting.output_folder import printable_name, staged_folder
from reporting.metrics import mean_metrics, reported_set_keys, set_metrics, written_metrics
from engine.rng import capture_rng_state, restore_rng_state, seed_everything
from engine.speed import apply_backend_settings, backend_settings_from
from training.sizes import check_sample_sizes
from util.errors import OptionError, UserError

log = logging.getLogger("test")

# Below this many images FID's bias dominates its differences between runs (facades' test split
# has 106, the README's quality figures use whole splits).
FEW_FOR_FID = 50


def run_test(opt: Options, saved: SavedGenerator | None = None) -> Path:
    """Test the generator ``saved`` (read from the run's folder when not given)."""
    label = load_label(opt)
    saved = saved or find_generator(experiment_dir(opt), label, use_ema=not opt.no_ema, model_suffix=opt.model_suffix)
    opt = Options(**{**opt.as_dict(), **options_for(opt, saved), "netG_from_checkpoint": False}).freeze()
    problem = first_problem(opt)
    if problem:
        raise OptionError(problem)
    if opt.fid:
        extractor_path()  # before any work: a missing extractor is a one-line error naming the install
    runtime = single_process_runtime(opt.gpu_ids)
    apply_backend_settings(backend_settings_from(opt), runtime.device)
    if opt.use_demo:
        from datasets.make_demo import ensure_demo_dataset
        ensure_demo_dataset(opt.dataroot)
    # The first --num_test images only: no later file is read, and the batches are validation's
    # (which scores the split's first --val_max_images), also where the count ends inside a batch.
    cfg = data_config(opt)
    cfg = replace(cfg, max_dataset_size=min(opt.num_test, cfg.max_dataset_size or opt.num_test))
    dataset = create_dataset(opt.dataset_mode, cfg)
    check_sample_sizes(opt, dataset, with_discriminator=False)   # a 1-px ResNet bottleneck: one line, not a traceback
    seed_everything(opt.seed)
    model = create_model(opt, runtime)
    net_G = unwrap(model.nets["G"])
    load_into(net_G, saved)
    if saved.execution is not None:  # e.g. "trained in bf16 (decided by --amp auto), OpenMP wait PASSIVE"
        log.info("%s", saved.execution.describe())

    train_batches = None
    if opt.eval and opt.bn_eval == "precise":
        # Population statistics over training images, seen as at test time (no flips).
        train_set = create_dataset(opt.dataset_mode, data_config(opt, phase="train"))
        train_batches = training_inputs(train_set, opt.batch_size, opt.seed, runtime.device, opt.num_threads)
    behaviour = prepare_generator(net_G, opt.eval, opt.bn_eval, opt.dropout, opt.seed, train_batches,
                                  opt.bn_precise_batches)
    batch_size = batch_size_for(opt.batch_size, net_G)
    if batch_size != opt.batch_size:
        log.info("--batch_size %d: each image runs alone, since the batch norm layers use batch statistics (as in "
                 "the reference's test.py); for a model trained with batches, --eval --bn_eval precise normalizes "
                 "with statistics recomputed over training images", opt.batch_size)
    loader = create_dataloader(dataset, batch_size, shuffle=False, num_workers=opt.num_threads, seed=opt.seed)

    final_dir = results_folder(opt.results_dir, opt.name, opt.phase, opt.epoch, opt.load_iter)
    names = ResultNames()
    # Built beside final_dir and renamed into place: a failing run (a full disk, a read-only
    # folder) leaves no half-written page and keeps the previous one.
    with staged_folder(final_dir) as page_dir:
        image_dir = page_dir / "images"
        rows: list[ResultRow] = []
        all_metrics: list[dict[str, float]] = []
        written_sets: dict[str, list] = {"fake_B": [], "real_B": []}   # for --fid, as written
        sections = []
        for batch_index, batch in enumerate(loader):
            model.set_input(batch)
            # As validation seeds the batch, on whichever rank: --epoch best draws its dropout masks.
            seed_batch(opt.seed, batch_index)
            if opt.inspect_layers and not sections:
                from reporting.inspection import inspect_generator

                def first_pass() -> torch.Tensor | None:
                    fake = net_G(model.inputs["A"])
                    return F.l1_loss(fake, model.inputs["B"]) if "B" in model.inputs else None
                saved_rng = capture_rng_state()   # the inspection's dropout draws leave the results alone
                sections.append(inspect_generator(net_G, opt.inspect_layers.split(","), first_pass,
                                                  image_dir / "layers", page_dir))
                restore_rng_state(saved_rng)
            model.test()
            visuals = model.current_visuals()
            for i, path in enumerate(model.image_paths):
                stem = names.name_for(path)
                images, written = {}, {}
                for name, batch_images in visuals.items():
                    # At the stored size and the data's bit depth (--preprocess pad, --output_bits).
                    file, written[name] = save_test_image(as_stored(batch_images[i], batch, i, cfg), image_dir /
                                                          f"{stem}_{name}", visual_bits(name, batch, i, opt.output_bits),
                                                          opt.aspect_ratio)
                    images[name] = str(file.relative_to(page_dir))
                # Measured on the pixels as written, after any --aspect_ratio resize.
                metrics = written_metrics(written["fake_B"], written["real_B"]) if "real_B" in written else {}
                if metrics:
                    all_metrics.append(metrics)
                    if opt.fid:
                        for name in written_sets:
                            written_sets[name].append(written[name])
                rows.append(ResultRow(printable_name(stem), images, metrics))

        summary = mean_metrics(all_metrics)
        of_set: dict[str, float] = {}
        if opt.fid:
            if len(written_sets["fake_B"]) < 2:
                raise OptionError(f"--fid needs at least 2 test images with real_B (an aligned set), "
                                  f"got {len(written_sets['fake_B'])}")
            if len(written_sets["fake_B"]) < FEW_FOR_FID:
                log.warning("--fid on %d images: FID is biased upward on small sets (KID is not), so compare it "
                            "only between runs on the same images", len(written_sets["fake_B"]))
            of_set = set_metrics(written_sets["fake_B"], written_sets["real_B"])
            # FID and KID describe the set: on the page they follow the per-image means.
            summary = {**summary, **{key: of_set[key] for key in reported_set_keys()}}
        weights = "EMA weights" if saved.ema else ""
        behaviour = f"{behaviour}; {weights}" if weights else behaviour
        title = f"{opt.name}: {opt.phase}, checkpoint {label} ({behaviour})"
        index = write_results_page(page_dir, title, rows, summary, extra_sections=sections,
                                   image_width=opt.display_winsize)
        (page_dir / "metrics.json").write_text(json.dumps(
            {"checkpoint": str(saved.path), "behaviour": behaviour, "mean": mean_metrics(all_metrics),
             **({"set": of_set} if of_set else {}), "images": {r.name: r.metrics for r in rows}}, indent=2))
    if opt.use_wandb:
        from reporting.wandb_results import log_test_results   # wandb loads only when asked for
        log_test_results(opt, experiment_dir(opt), final_dir, rows, summary, read_pixels)
    log.info("%d images, %s", len(rows), behaviour)
    if summary:
        log.info("mean " + "  ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    log.info("results page: %s", final_dir / index.name)
    return final_dir


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opt = parse_options(argv, is_train=False)
    setup_logging(verbose=opt.verbose)
    try:
        check_bn_eval_used(opt)
        if opt.load_iter > 0 and "epoch" in opt.explicit:
            log.warning("--load_iter %d loads iter_%d's checkpoint; the typed --epoch %s only names the results "
                        "folder (%s), as in the reference", opt.load_iter, opt.load_iter, opt.epoch,
                        results_folder(opt.results_dir, opt.name, opt.phase, opt.epoch, opt.load_iter).name)
        saved = find_generator(run_folder(opt), load_label(opt), use_ema=not opt.no_ema,
                               model_suffix=opt.model_suffix)
        trained_as = trained_option(opt, saved, "model")
        if trained_as is not None and trained_as != opt.model:
            # The checkpoint's model brings its own defaults (data mode, channels): parse again.
            where = (experiment_dir(opt), load_label(opt))
            opt = parse_options(["--model", trained_as, *argv], is_train=False)
            if (experiment_dir(opt), load_label(opt)) != where:
                saved = None   # a --suffix that names a model default moved the run: look there
        run_test(opt, saved)   # the checkpoint is read once
    except UserError as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
