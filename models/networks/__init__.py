"""Generators and discriminators by name (``--netG``, ``--netD``).

A generator factory takes (input_nc, output_nc, ngf, norm, dropout); a discriminator factory
takes (input_nc, ndf, n_layers, norm). ``size_multiple`` says which input sides a generator
accepts, so options and data can check or fix sizes before any tensor is built.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from models.networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from models.networks.resnet import ResnetGenerator
from models.networks.unet import UnetGenerator
from models.norms import NormSpec
from util.registry import Registry

GeneratorFactory = Callable[[int, int, int, NormSpec, bool], nn.Module]
DiscriminatorFactory = Callable[[int, int, int, NormSpec], nn.Module]

GENERATORS: Registry[GeneratorFactory] = Registry("--netG")
DISCRIMINATORS: Registry[DiscriminatorFactory] = Registry("--netD")


def _unet(num_downs: int) -> GeneratorFactory:
    return lambda i, o, ngf, norm, dropout: UnetGenerator(i, o, num_downs, ngf, norm, dropout)


def _resnet(n_blocks: int) -> GeneratorFactory:
    return lambda i, o, ngf, norm, dropout: ResnetGenerator(i, o, n_blocks, ngf, norm, dropout)


GENERATORS.add("unet_256", _unet(8), size_multiple=256,
               help="U-Net, 8 downsamplings: sides must be multiples of 256")
GENERATORS.add("unet_128", _unet(7), size_multiple=128,
               help="U-Net, 7 downsamplings: sides must be multiples of 128")
GENERATORS.add("resnet_9blocks", _resnet(9), size_multiple=4,
               help="ResNet, 9 residual blocks: sides must be multiples of 4")
GENERATORS.add("resnet_6blocks", _resnet(6), size_multiple=4,
               help="ResNet, 6 residual blocks: sides must be multiples of 4")

DISCRIMINATORS.add("basic", lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, 3, norm),
                   help="70x70 PatchGAN (3 layers)")
DISCRIMINATORS.add("n_layers", lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, n_layers, norm),
                   help="PatchGAN with --n_layers_D layers")
DISCRIMINATORS.add("pixel", lambda i, ndf, n_layers, norm: PixelDiscriminator(i, ndf, norm),
                   help="1x1 PatchGAN: judges each pixel")


def size_multiple(net_g: str) -> int:
    return GENERATORS.entry(net_g).meta["size_multiple"]


def build_generator(name: str, input_nc: int, output_nc: int, ngf: int, norm: NormSpec,
                    dropout: bool) -> nn.Module:
    return GENERATORS.get(name)(input_nc, output_nc, ngf, norm, dropout)


def build_discriminator(name: str, input_nc: int, ndf: int, n_layers: int, norm: NormSpec) -> nn.Module:
    return DISCRIMINATORS.get(name)(input_nc, ndf, n_layers, norm)
