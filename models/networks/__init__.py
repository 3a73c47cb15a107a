"""Generators and discriminators by name (``--netG``, ``--netD``).

A generator factory takes (input_nc, output_nc, ngf, norm, dropout, upsample); a discriminator
factory takes (input_nc, ndf, n_layers, norm, num_D) (num_D: scales of the multiscale D only). ``size_multiple`` says which input sides a generator
accepts, so options and data can check or fix sizes before any tensor is built.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from models.networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from models.networks.multiscale import MultiscaleDiscriminator
from models.networks.resnet import ResnetGenerator
from models.networks.unet import UnetGenerator
from models.networks.upsample import DEFAULT_UPSAMPLE, UPSAMPLERS  # noqa: F401  (UPSAMPLERS: --upsample)
from models.norms import NormSpec
from util.registry import Registry

GeneratorFactory = Callable[[int, int, int, NormSpec, bool, str], nn.Module]
DiscriminatorFactory = Callable[[int, int, int, NormSpec, int], nn.Module]

GENERATORS: Registry[GeneratorFactory] = Registry("--netG")
DISCRIMINATORS: Registry[DiscriminatorFactory] = Registry("--netD")


def _unet(num_downs: int) -> GeneratorFactory:
    return lambda i, o, ngf, norm, dropout, up: UnetGenerator(i, o, num_downs, ngf, norm, dropout, up)


def _resnet(n_blocks: int) -> GeneratorFactory:
    return lambda i, o, ngf, norm, dropout, up: ResnetGenerator(i, o, n_blocks, ngf, norm, dropout, up)


GENERATORS.add("unet_256", _unet(8), size_multiple=256,
               help="U-Net, 8 downsamplings: sides must be multiples of 256")
GENERATORS.add("unet_128", _unet(7), size_multiple=128,
               help="U-Net, 7 downsamplings: sides must be multiples of 128")
GENERATORS.add("resnet_9blocks", _resnet(9), size_multiple=4,
               help="ResNet, 9 residual blocks: sides must be multiples of 4")
GENERATORS.add("resnet_6blocks", _resnet(6), size_multiple=4,
               help="ResNet, 6 residual blocks: sides must be multiples of 4")

DISCRIMINATORS.add("basic", lambda i, ndf, n_layers, norm, num_d: NLayerDiscriminator(i, ndf, 3, norm),
                   help="70x70 PatchGAN (3 layers)")
DISCRIMINATORS.add("n_layers", lambda i, ndf, n_layers, norm, num_d: NLayerDiscriminator(i, ndf, n_layers, norm),
                   help="PatchGAN with --n_layers_D layers")
DISCRIMINATORS.add("pixel", lambda i, ndf, n_layers, norm, num_d: PixelDiscriminator(i, ndf, norm),
                   help="1x1 PatchGAN: judges each pixel")
DISCRIMINATORS.add("multiscale",
                   lambda i, ndf, n_layers, norm, num_d: MultiscaleDiscriminator(i, ndf, n_layers, norm, num_d),
                   help="--num_D PatchGANs (--n_layers_D layers) on the pair at full, 1/2 (and 1/4) size "
                        "(pix2pixHD)")


def size_multiple(net_g: str) -> int:
    return GENERATORS.entry(net_g).meta["size_multiple"]


def build_generator(name: str, input_nc: int, output_nc: int, ngf: int, norm: NormSpec,
                    dropout: bool, upsample: str = DEFAULT_UPSAMPLE) -> nn.Module:
    return GENERATORS.get(name)(input_nc, output_nc, ngf, norm, dropout, upsample)


def build_discriminator(name: str, input_nc: int, ndf: int, n_layers: int, norm: NormSpec,
                        num_D: int = 1) -> nn.Module:
    return DISCRIMINATORS.get(name)(input_nc, ndf, n_layers, norm, num_D)
