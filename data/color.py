"""sRGB <-> CIE Lab (D65 white, 2 degree observer) in torch, for colorization.

The constants are the ones scikit-image uses, so results match ``skimage.color.rgb2lab`` /
``lab2rgb`` closely; everything is elementwise or a 3x3 matrix over the channel axis, so it
runs batched on whatever device the tensors are on.

Shapes: (3, H, W) or (N, 3, H, W), channels first. RGB is in [0, 1]; Lab has L in [0, 100]
and a, b roughly in [-110, 110].
"""
from __future__ import annotations

import torch

_XYZ_FROM_RGB = torch.tensor([[0.412453, 0.357580, 0.180423],
                              [0.212671, 0.715160, 0.072169],
                              [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)

# The CIE function f(t) switches from a cube root to a line below (6/29)^3.
_EPSILON = 0.008856
_KAPPA_SLOPE = 7.787
_OFFSET = 16.0 / 116.0

L_SCALE, L_SHIFT = 50.0, 1.0   # L/50 - 1 maps [0, 100] to [-1, 1]
AB_SCALE = 110.0               # ab/110 maps the usual gamut into about [-1, 1]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # Half precision loses the 1e-3 agreement; float64 inputs stay float64.
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _channels_first(x: torch.Tensor, name: str) -> int:
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"{name}: expected (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
    return x.dim() - 3   # index of the channel axis


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix along the channel axis."""
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> Lab."""
    channel_dim = _channels_first(rgb, "rgb_to_lab")
    rgb = rgb.to(_compute_dtype(rgb)).clamp(0.0, 1.0)
    # Undo the sRGB transfer curve; clamping keeps pow() away from 0 so gradients stay finite.
    linear = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _mix(_XYZ_FROM_RGB, linear) / _per_channel(_D65_WHITE, linear)
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1.0 / 3.0), _KAPPA_SLOPE * xyz + _OFFSET)
    fx, fy, fz = f.unbind(channel_dim)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=channel_dim)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> sRGB in [0, 1] (out-of-gamut colours are clipped, as scikit-image does)."""
    channel_dim = _channels_first(lab, "lab_to_rgb")
    lab = lab.to(_compute_dtype(lab))
    l, a, b = lab.unbind(channel_dim)
    fy = (l + 16.0) / 116.0
    # A negative z has no physical meaning; scikit-image clips it to 0 too.
    f = torch.stack((fy + a / 500.0, fy, (fy - b / 200.0).clamp_min(0.0)), dim=channel_dim)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - _OFFSET) / _KAPPA_SLOPE)
    linear = _mix(_RGB_FROM_XYZ, xyz * _per_channel(_D65_WHITE, xyz))
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055,
                      linear * 12.92)
    return rgb.clamp(0.0, 1.0)


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> [-1, 1]."""
    return l / L_SCALE - L_SHIFT


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a, b -> about [-1, 1]."""
    return ab / AB_SCALE


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return (l_norm + L_SHIFT) * L_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE


def lab_tensors_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Normalized L (1 channel) and ab (2 channels) -> RGB in [-1, 1] for display.

    Works on (C, H, W) or (N, C, H, W), in the dtype of ``l_norm``. L is clamped to
    [0, 100] because a generator's output may stray outside it.
    """
    channel_dim = l_norm.dim() - 3
    l = denormalize_l(l_norm).clamp(0.0, 100.0)
    lab = torch.cat((l, denormalize_ab(ab_norm).to(l.dtype)), dim=channel_dim)
    return (lab_to_rgb(lab) * 2.0 - 1.0).to(l_norm.dtype)
