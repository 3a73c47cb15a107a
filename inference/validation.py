"""Validation during training: G run on a held-out split in the test-time behaviour the user
chose, scored as test.py scores (every per-image metric of reporting/metrics.py on the 8-bit
pixels, FID/KID of the set). It runs G as test.py does (inference/split_inference.py: the batch
size, precise statistics, each batch's dropout draws seeded by its position in the split), so
``test.py --epoch best`` with the flags options/validation.py logs reproduces the recorded figures
exactly.

Validation must leave training exactly as it was: it runs a copy of G (a batch-norm layer in
train mode would otherwise move its running statistics), reads the split through a loader of
its own that draws nothing from the global generators, and restores every RNG stream
afterwards (dropout at test time draws from torch's), so the weights and streams after N steps
are bit-identical with or without it.

Under several processes each rank takes every world_size-th batch of the split (batches of the
same images as one process would form, so batch statistics agree, and each seeded by its
position in the split, so the dropout masks are test.py's whichever rank draws them), the
per-image sums are reduced, and the Inception features are gathered in the split's order for
FID/KID.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from data import DataError
from data.loader import until_bad
from data.results import measured_pixels
from data.transforms import SampleKey, sample_seed
from engine.distributed import Runtime, any_rank, gather_to_all, unwrap
from engine.rng import capture_rng_state, restore_rng_state
from inference.split_inference import TrainBatches, batch_size_for, prepare_generator, seed_batch
from inference.val_fid import RealFeatureCache
from models.precise_bn import PRECISE_BATCHES
from models.sync_batchnorm import make_local
from reporting.fid import inception_features, score_features
from reporting.metrics import IMAGE, fid_batch, metric_names, written_metrics

if TYPE_CHECKING:
    from models.base_model import BaseModel

log = logging.getLogger(__name__)

PIXEL_METRICS = metric_names(IMAGE)


@dataclass(frozen=True)
class ValidationConfig:
    eval_mode: bool = False            # --eval: norm layers in eval mode, dropout off
    bn_eval: str = "running"           # --bn_eval, with --eval
    dropout: str | None = None         # --dropout: on/off at test time (None: by --eval)
    use_ema: bool = True               # the moving average of G when training keeps one
    fid: bool = False                  # --val_fid: FID and KID of the set
    max_images: int | None = None      # --val_max_images: the first N images of the split
    batch_size: int = 1                # test.py's --batch_size: kept unless a norm layer pools over the batch
    seed: int = 0                      # the crops of the split, and the test-time dropout draws
    precise_batches: int = PRECISE_BATCHES   # --bn_precise_batches, for --bn_eval precise


class BadValidationData(Exception):
    """An image of the validation split could not be decoded (damage its header did not show),
    raised on every rank at the same validation: ``error`` is this rank's DataError, None where
    this rank's share decoded. The training loop stops on it as on a bad training image."""

    def __init__(self, error: DataError | None) -> None:
        super().__init__(str(error) if error is not None else "a validation image of another rank")
        self.error = error


def _rank_indices(count: int, batch_size: int, rank: int, world_size: int) -> list[int]:
    """This rank's indices: the images of every world_size-th batch, starting at batch ``rank``."""
    batches = [list(range(start, min(start + batch_size, count))) for start in range(0, count, batch_size)]
    return [i for batch in batches[rank::world_size] for i in batch]


def _broadcast_buffers(net: nn.Module, runtime: Runtime) -> None:
    """Rank 0's running statistics on every rank: the ones its checkpoint will hold."""
    if runtime.distributed:
        for buffer in net.buffers():
            dist.broadcast(buffer, src=0)


class Validator:
    """``validator(model) -> {every per-image metric[, "FID", "KID", "KID_std"]}``, the same
    figures on every rank. ``train_batches`` gives training inputs (A) for ``--bn_eval precise``."""

    def __init__(self, dataset: Dataset, cfg: ValidationConfig, runtime: Runtime, cache_dir: Path | None = None,
                 train_batches: TrainBatches | None = None) -> None:
        if len(dataset) == 0:
            raise DataError("the validation split holds no images")
        self.dataset, self.cfg, self.runtime, self.train_batches = dataset, cfg, runtime, train_batches
        self.count = min(len(dataset), cfg.max_images or len(dataset))
        self.fid_cache = None
        if cfg.fid and runtime.is_main:
            paths = [Path(p) for p in getattr(dataset, "paths", [])][:self.count]
            data_cfg = getattr(dataset, "cfg", None)
            # "pixels": features of the images as test.py writes them (padding cropped, 16-bit
            # scaled); caches from before that was so hold others and are computed again.
            self.fid_cache = RealFeatureCache(cache_dir, paths, {"seed": cfg.seed, "data": repr(data_cfg),
                                                                 "pixels": "as written"})
        self.behaviour = ""
        self.device = str(runtime.device)   # Inception runs where G runs

    def loader(self, batch_size: int) -> DataLoader:
        """This rank's share of the split in batches of ``batch_size``, each image cropped as
        test.py's loader crops it (the seed of (--seed, epoch 0, index))."""
        keys = [SampleKey(i, sample_seed(self.cfg.seed, 0, i))
                for i in _rank_indices(self.count, batch_size, self.runtime.rank, self.runtime.world_size)]
        # A generator of its own: an iterator of a loader without one draws its base seed from torch's.
        return DataLoader(self.dataset, batch_size=batch_size, sampler=keys, num_workers=0,
                          collate_fn=default_collate, generator=torch.Generator().manual_seed(self.cfg.seed))

    def generator_copy(self, model: "BaseModel") -> nn.Module:
        ema = getattr(model, "ema", None)
        source = ema.net if (self.cfg.use_ema and ema is not None) else unwrap(model.nets["G"])
        net = copy.deepcopy(source)
        # A synced layer would pool each batch with the other ranks' batches, which differ in
        # number here; test.py normalizes a batch by itself, so the copy does the same.
        make_local(net)
        _broadcast_buffers(net, self.runtime)
        batches = self.train_batches if self.cfg.eval_mode and self.cfg.bn_eval == "precise" else None
        self.behaviour = prepare_generator(net, self.cfg.eval_mode, self.cfg.bn_eval, self.cfg.dropout, self.cfg.seed,
                                           batches, self.cfg.precise_batches)
        if batches is not None:
            _broadcast_buffers(net, self.runtime)
        return net

    def __call__(self, model: "BaseModel") -> dict[str, float]:
        saved_rng = capture_rng_state()
        try:
            return self._run(model)
        finally:
            restore_rng_state(saved_rng)

    @torch.no_grad()
    def _run(self, model: "BaseModel") -> dict[str, float]:
        # A shallow copy whose G is the copy: set_input and test() write their tensors onto the
        # view, so the model's own current images (shown on the pages) stay the training ones.
        view = copy.copy(model)
        view.nets = {"G": self.generator_copy(model)}
        batch_size = batch_size_for(self.cfg.batch_size, view.nets["G"])
        loader = self.loader(batch_size)
        view.amp = "none"   # fp32, as test.py runs by default: the figures are test.py's
        # Rank 0 holds the real features (from the cache file or the first validation).
        need_real = self.cfg.fid and bool(gather_to_all(self.fid_cache is not None and self.fid_cache.features is None,
                                                        self.runtime)[0])
        data_cfg = getattr(self.dataset, "cfg", None)
        sums = torch.zeros(len(PIXEL_METRICS) + 1, dtype=torch.float64)
        fake_feats: list[np.ndarray] = []
        real_feats: list[np.ndarray] = []
        order: list[int] = []
        error: DataError | None = None
        for keys, (batch, bad) in zip(_chunks(loader.sampler, batch_size), until_bad(loader)):
            if bad is not None:
                error = bad
                break
            view.set_input(batch)
            # The split's batches start at multiples of batch_size: this is test.py's batch
            # keys[0].index // batch_size, seeded as test.py seeds it.
            seed_batch(self.cfg.seed, keys[0].index // batch_size)
            view.test()
            visuals = view.current_visuals()
            # The pixels test.py writes and measures: padding cropped, at the data's depth.
            fakes, reals = ([measured_pixels(name, visuals[name], batch, i, data_cfg) for i in range(len(visuals[name]))]
                            for name in ("fake_B", "real_B"))
            for fake, real in zip(fakes, reals):
                scores = written_metrics(fake, real)
                sums += torch.tensor([scores[k] for k in PIXEL_METRICS] + [1.0], dtype=torch.float64)
            if self.cfg.fid:
                order += [k.index for k in keys]
                fake_feats.append(inception_features(fid_batch(fakes), self.device))
                if need_real:
                    real_feats.append(inception_features(fid_batch(reals), self.device))
        # Agreed before the figures' all-reduce, which a rank that stopped early would leave waiting.
        if any_rank(error is not None, self.runtime):
            raise BadValidationData(error)
        if self.runtime.distributed:   # on the device: nccl reduces only GPU tensors
            sums = sums.to(self.runtime.device)
            dist.all_reduce(sums)
            sums = sums.cpu()
        count = max(int(sums[-1]), 1)
        metrics = {name: float(sums[i]) / count for i, name in enumerate(PIXEL_METRICS)}
        if self.cfg.fid:
            metrics.update(self._set_metrics(order, fake_feats, real_feats if need_real else None))
        return metrics

    def _set_metrics(self, order: list[int], fake_feats: list[np.ndarray],
                     real_feats: list[np.ndarray] | None) -> dict[str, float]:
        """FID and KID on rank 0, with the features of every rank in the split's order (KID
        draws subsets by position), then handed to the others."""
        local = (order, _stack(fake_feats), None if real_feats is None else _stack(real_feats))
        shares = gather_to_all(local, self.runtime)
        result: list[dict[str, float] | None] = [None]
        if self.fid_cache is not None:   # rank 0
            positions = np.argsort(np.concatenate([np.asarray(s[0], dtype=np.int64) for s in shares]), kind="stable")
            fake = np.concatenate([s[1] for s in shares])[positions]
            if real_feats is not None:
                self.fid_cache.store(np.concatenate([s[2] for s in shares])[positions])
            result = [score_features(self.fid_cache.features, fake).as_metrics()]
        if self.runtime.distributed:
            dist.broadcast_object_list(result, src=0)
        assert result[0] is not None
        return result[0]


def _chunks(keys: list[SampleKey], size: int) -> Iterable[list[SampleKey]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, 2048))
