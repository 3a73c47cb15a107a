"""Generators and discriminators by name (``--netG``, ``--netD``).

Each name is a preset of a family's spec (models/networks/spec.py): the spec class and the
fields the name fixes. ``GENERATORS.from_options(options)`` is the spec the options describe,
``spec.build()`` the network, ``spec.size_multiple`` the input sides a generator accepts, so
options and data can check or fix sizes before any tensor is built.
"""
from __future__ import annotations

from argparse import Namespace
from typing import Any, Mapping

from torch import nn

from models.networks.local_enhancer import GlobalSpec, LocalEnhancerSpec
from models.networks.multiscale import MultiscaleSpec
from models.networks.patchgan import NLayerSpec, PixelSpec
from models.networks.resnet import ResnetSpec
from models.networks.spec import GeneratorSpec, NetSpec, SpecRegistry
from models.networks.unet import UnetSpec
from models.networks.upsample import DEFAULT_UPSAMPLE, UPSAMPLERS  # noqa: F401  (UPSAMPLERS: --upsample)

GENERATORS = SpecRegistry("--netG", "netG")
DISCRIMINATORS = SpecRegistry("--netD", "netD")

GENERATORS.add_preset("unet_256", UnetSpec, num_downs=8,
                      help="U-Net, 8 downsamplings: sides must be multiples of 256")
GENERATORS.add_preset("unet_128", UnetSpec, num_downs=7,
                      help="U-Net, 7 downsamplings: sides must be multiples of 128")
GENERATORS.add_preset("unet", UnetSpec,
                      help="U-Net of --num_downs downsamplings (default 8): sides must be multiples of 2**num_downs")
GENERATORS.add_preset("resnet_9blocks", ResnetSpec, n_blocks=9,
                      help="ResNet, 9 residual blocks: sides must be multiples of 4")
GENERATORS.add_preset("resnet_6blocks", ResnetSpec, n_blocks=6,
                      help="ResNet, 6 residual blocks: sides must be multiples of 4")
GENERATORS.add_preset("local", LocalEnhancerSpec,
                      help="pix2pixHD's coarse-to-fine generator: a global generator on the input shrunk "
                           "2**n_local_enhancers times, then local enhancers (paper widths with --ngf 32): sides "
                           "must be multiples of 2**(n_local_enhancers + n_downsample_global + 1), 64 by default")
GENERATORS.add_preset("global", GlobalSpec,
                      help="pix2pixHD's global generator alone, to train at half size before --netG local "
                           "(--init_global_from): sides must be multiples of 2**(n_downsample_global + 1), 32 by default")

DISCRIMINATORS.add_preset("basic", NLayerSpec, n_layers=3, help="70x70 PatchGAN (3 layers)")
DISCRIMINATORS.add_preset("n_layers", NLayerSpec, help="PatchGAN with --n_layers_D layers")
DISCRIMINATORS.add_preset("pixel", PixelSpec, help="1x1 PatchGAN: judges each pixel")
DISCRIMINATORS.add_preset("multiscale", MultiscaleSpec,
                          help="--num_D PatchGANs (--n_layers_D layers) on the pair at full, 1/2 (and 1/4) size "
                               "(pix2pixHD)")

# The roles a checkpoint stores a spec for, with the registry that reads it back.
ROLES: dict[str, SpecRegistry] = {"G": GENERATORS, "D": DISCRIMINATORS}


def generator_spec(options: Mapping[str, Any] | Namespace) -> GeneratorSpec:
    """The generator the options describe."""
    spec = GENERATORS.from_options(options if isinstance(options, Mapping) else vars(options))
    assert isinstance(spec, GeneratorSpec)
    return spec


def size_multiple(net_g: str) -> int:
    """The size multiple of preset ``net_g`` with its other fields at their defaults."""
    return generator_spec({"netG": net_g}).size_multiple


def build_generator(name: str, **fields: Any) -> nn.Module:
    return GENERATORS.spec(name, **fields).build()


def build_discriminator(name: str, **fields: Any) -> nn.Module:
    return DISCRIMINATORS.spec(name, **fields).build()


def architecture_from_options(options: Mapping[str, Any]) -> dict[str, dict]:
    """The spec dicts of the networks the options describe: G always, D when they name one.
    Also how a file of an earlier version, which kept only its options, gets its specs."""
    specs = {"G": GENERATORS.from_options(options).as_dict()}
    if "netD" in options:
        specs["D"] = DISCRIMINATORS.from_options(options).as_dict()
    return specs


def spec_from_dict(role: str, saved: Mapping[str, Any]) -> NetSpec:
    return ROLES[role].from_dict(saved)
