"""Load checkpoints written by the reference pix2pix implementation into our networks.

The reference saves bare state_dicts whose keys follow its own module nesting (a U-Net's
levels are ``model.model.1.model.3...``; a ResNet is one flat ``model.N`` list). Our networks
compute the same functions with different module names, so the keys are paired by structure,
not by a table written for one configuration: both state_dicts are grouped by module (key
prefix) in state_dict order, which is the depth-first order in which the layers are applied
for both, and the i-th layer-with-weights of one is the i-th of the other. Each pair must
agree in kind (conv or norm) and in every shape.

Differences the pairing absorbs:
- With ``--norm none`` the reference drops the conv biases that ours keep: those load as zeros.
- Instance-norm checkpoints from old PyTorch versions carry ``running_mean``/``running_var``
  for layers that never use them: dropped.
- Checkpoints saved from a DataParallel wrapper carry a ``module.`` prefix: stripped.

A reference generator file stores no options, so ``reference_generator_options`` reads its
architecture from the weights (``read_reference_generator``): the norm from its keys, the
width and channels from its first and last convs, the --netG from its layer sequence, and for
a ResNet the dropout from where each residual block's second conv sits. When a file is
loaded into a network built otherwise, the error names the option that is wrong, worked out
the same way.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from models.networks import DISCRIMINATORS, GENERATORS, build_discriminator
from models.networks.spec import DiscriminatorSpec, GeneratorSpec, as_options, flag_name, flag_of
from engine.checkpoint import CheckpointError, load_file

Tensor = torch.Tensor
log = logging.getLogger(__name__)

# The reference norm each of our norms reproduces exactly (same parameters, same math).
# The reference has only batch, instance and none; our group and layer norms have no equivalent.
REFERENCE_NORM_OF: dict[str, str] = {"batch": "batch", "syncbatch": "batch", "instance": "instance",
                                     "none": "none"}

_NORM_EVIDENCE = {
    "batch": "batch norm (norm layers with weights and running_mean)",
    "instance": "instance norm (every conv has a bias, no norm weights)",
    "none": "no normalization (no norm layers; the convs in front of them have no bias)",
}
_STATS = frozenset({"running_mean", "running_var", "num_batches_tracked"})
# The reference upsamples with stride-2 transposed convolutions only.
REFERENCE_UPSAMPLE = "deconv"
# A reference residual block is pad, conv, norm, ReLU, [Dropout], pad, conv, norm (define_G
# always pads by reflection), so its second conv sits this many modules after its first.
_BLOCK_CONV_GAP = {4: False, 5: True}   # gap -> dropout
# PatchGAN depths tried when reading a reference discriminator's layout.
_MAX_D_LAYERS = 8
# The generator families the reference implementation has.
REFERENCE_FAMILIES = ("unet", "resnet")
# Depths tried for a preset's free depth option (from its minimum): a U-Net of 12 halvings
# takes 4096 px sides, beyond any reference model.
_DEPTHS_TRIED = 12


@dataclass
class Layer:
    """The tensors of one module, by leaf name (``weight``, ``bias``, ``running_mean``...)."""
    prefix: str
    tensors: dict[str, Tensor]

    @property
    def kind(self) -> str:
        weight = self.tensors.get("weight")
        if weight is not None and weight.dim() == 4:
            return "conv"
        if weight is not None:
            return "norm"
        if set(self.tensors) <= _STATS:
            return "stats"   # running statistics without learned parameters: old instance norm
        return "other"

    def key(self, leaf: str) -> str:
        return f"{self.prefix}.{leaf}" if self.prefix else leaf


def group_by_module(state: Mapping[str, Tensor]) -> list[Layer]:
    """Modules in state_dict order. A module's keys are contiguous in a state_dict (its own
    parameters and buffers, then its children's), so splitting at the last dot suffices."""
    layers: dict[str, Layer] = {}
    for key, tensor in state.items():
        prefix, _, leaf = key.rpartition(".")
        layers.setdefault(prefix, Layer(prefix, {})).tensors[leaf] = tensor
    return list(layers.values())


def strip_wrapper_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def reference_layers(state: Mapping[str, Tensor]) -> list[Layer]:
    """The layers of a reference file's state_dict (a DataParallel prefix stripped)."""
    state = strip_wrapper_prefix(state)
    if not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError("reference checkpoint: not a state_dict of tensors")
    return group_by_module(state)


def infer_reference_norm(layers: list[Layer]) -> str:
    """batch, instance or none, from the keys alone."""
    if any(layer.kind == "norm" and "running_mean" in layer.tensors for layer in layers):
        return "batch"
    if any(layer.kind == "stats" for layer in layers):
        return "instance"
    convs = [layer for layer in layers if layer.kind == "conv"]
    # Under instance norm every conv keeps its bias; under none the convs before the
    # (identity) norm layers lose theirs.
    return "instance" if convs and all("bias" in c.tensors for c in convs) else "none"


def _structure(layers: list[Layer]) -> list[str]:
    """The layer sequence: kinds, and each conv's kernel size (a 1x1 PatchGAN and a one-layer
    4x4 one have the same kinds)."""
    return [layer.kind + ("x".join(map(str, layer.tensors["weight"].shape[2:])) if layer.kind == "conv" else "")
            for layer in layers if layer.kind != "stats"]


def _layout(net: nn.Module) -> list[str]:
    return _structure(group_by_module(net.state_dict()))


def _convs(layers: list[Layer]) -> list[Layer]:
    return [layer for layer in layers if layer.kind == "conv"]


class _Mismatch(Exception):
    pass


def _pair(ref_layers: list[Layer], our_layers: list[Layer]) -> dict[str, Tensor]:
    ref_layers = [layer for layer in ref_layers if layer.kind != "stats"]
    our_layers = [layer for layer in our_layers if layer.tensors]
    if len(ref_layers) != len(our_layers):
        raise _Mismatch(f"it has {len(ref_layers)} layers with weights, this network {len(our_layers)}")
    out: dict[str, Tensor] = {}
    for ref, ours in zip(ref_layers, our_layers):
        if ref.kind != ours.kind:
            raise _Mismatch(f"its {ref.prefix} is a {ref.kind} layer where this network has a {ours.kind} "
                            f"({ours.prefix})")
        extra = set(ref.tensors) - set(ours.tensors)
        if extra:
            raise _Mismatch(f"its {ref.prefix} has {', '.join(sorted(extra))}, which {ours.prefix} lacks")
        for leaf, mine in ours.tensors.items():
            theirs = ref.tensors.get(leaf)
            if theirs is None:
                if (leaf == "bias" and ours.kind == "conv") or leaf == "num_batches_tracked":
                    # A reference conv without bias (norm none) adds nothing: a zero bias.
                    theirs = torch.zeros_like(mine)
                else:
                    raise _Mismatch(f"its {ref.prefix} has no {leaf} (this network's {ours.prefix} does)")
            if theirs.shape != mine.shape:
                raise _Mismatch(f"{ref.key(leaf)} has shape {tuple(theirs.shape)}, this network's "
                                f"{ours.key(leaf)} {tuple(mine.shape)}")
            out[ours.key(leaf)] = theirs
    return out


def convert_reference_state(state: Mapping[str, Tensor], net: nn.Module, norm: str,
                            diagnose: Callable[[list[Layer]], list[str]]) -> dict[str, Tensor]:
    """A state_dict with ``net``'s keys holding the reference file's tensors.

    ``diagnose`` turns the reference layers into "use --option value" hints for the error.
    """
    ref_layers = reference_layers(state)
    ref_norm = infer_reference_norm(ref_layers)
    wanted = REFERENCE_NORM_OF.get(norm)
    if wanted != ref_norm:
        raise CheckpointError(f"this reference checkpoint was saved with {_NORM_EVIDENCE[ref_norm]}: "
                              f"use --norm {ref_norm} (not --norm {norm})")
    try:
        return _pair(ref_layers, group_by_module(net.state_dict()))
    except _Mismatch as err:
        hints = diagnose(ref_layers)
        advice = f": use {' '.join(hints)}" if hints else ""
        raise CheckpointError(f"this reference checkpoint does not fit the network you asked for "
                              f"({err}){advice}") from None


def _generator_fits(ref_layers: list[Layer], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The --netG values whose (tiny) network has the reference file's layer sequence: every
    preset with the options' other values first; failing that, each preset's free depth option
    tried in turn (a file of ``--netG unet --num_downs 6`` fits no preset at the default 8)."""
    target = _structure(ref_layers)
    tiny = {**options, "ngf": 2}   # width 2 is enough to compare layer sequences

    def fits(values: Mapping[str, Any]) -> bool:
        return _layout(GENERATORS.from_options({**tiny, **values}).build()) == target
    found = [{"netG": name} for name in GENERATORS.names() if fits({"netG": name})]
    if found:
        return found
    for name in GENERATORS.names():
        preset = GENERATORS.get(name)
        if preset.spec.family not in REFERENCE_FAMILIES:
            continue   # pix2pixHD's widen with depth: deep ones are huge, and the reference has none
        for f in dataclasses.fields(preset.spec):
            flag = flag_of(f)
            if (flag is None or not flag.shape or flag.minimum is None or f.name in preset.fixed
                    or type(f.default) is not int):
                continue
            found += [{"netG": name, flag_name(f): v} for v in range(flag.minimum, flag.minimum + _DEPTHS_TRIED)
                      if fits({"netG": name, flag_name(f): v})]
    return found


def _generator_hints(spec: GeneratorSpec) -> Callable[[list[Layer]], list[str]]:
    def diagnose(ref_layers: list[Layer]) -> list[str]:
        convs = _convs(ref_layers)
        if not convs:
            return []
        first, last = convs[0].tensors, convs[-1].tensors
        found = {"ngf": first["weight"].shape[0], "input_nc": first["weight"].shape[1]}
        if "bias" in last:   # the last layer of every generator keeps its bias
            found["output_nc"] = last["bias"].shape[0]
        asked = as_options(spec, "netG")
        fits = _generator_fits(ref_layers, {**asked, "input_nc": found["input_nc"],
                                            "output_nc": found.get("output_nc", spec.output_nc),
                                            "norm": infer_reference_norm(ref_layers)})
        if fits and not any(fit["netG"] == spec.name and len(fit) == 1 for fit in fits):
            found.update(next((fit for fit in fits if fit["netG"] == spec.name), fits[0]))
        return [f"--{k} {v}" for k, v in found.items() if asked.get(k) != v]
    return diagnose


def _discriminator_fits(ref_layers: list[Layer]) -> list[tuple[str, int]]:
    """The (--netD, --n_layers_D) pairs whose (tiny) network has the reference file's layer
    sequence, in registry order (a layout that --n_layers_D does not change fits with every
    count)."""
    norm, target = infer_reference_norm(ref_layers), _structure(ref_layers)
    return [(name, n_layers) for name in DISCRIMINATORS.names() for n_layers in range(1, _MAX_D_LAYERS + 1)
            if _layout(build_discriminator(name, input_nc=1, ndf=2, n_layers=n_layers, norm=norm)) == target]


def _discriminator_hints(spec: DiscriminatorSpec) -> Callable[[list[Layer]], list[str]]:
    def diagnose(ref_layers: list[Layer]) -> list[str]:
        convs = _convs(ref_layers)
        if not convs:
            return []
        hints = []
        ndf = convs[0].tensors["weight"].shape[0]
        if ndf != spec.ndf:
            hints.append(f"--ndf {ndf}")
        in_nc = convs[0].tensors["weight"].shape[1]
        if in_nc != spec.input_nc:
            hints.append(f"--input_nc/--output_nc summing to {in_nc}")
        fits = _discriminator_fits(ref_layers)
        if fits:
            name, n_layers = fits[0]
            if name != spec.name or (name == "n_layers" and n_layers != getattr(spec, "n_layers", None)):
                hints.append(f"--netD {name}" + (f" --n_layers_D {n_layers}" if name == "n_layers" else ""))
        return hints
    return diagnose


@dataclass(frozen=True)
class ReferenceGenerator:
    """What a reference generator file shows of its architecture."""
    layers: list[Layer]
    input_nc: int
    output_nc: int
    ngf: int
    norm: str                # batch, instance or none
    dropout: bool | None     # None: no residual blocks (a U-Net's dropout leaves no trace)


def _block_dropout(layers: list[Layer]) -> bool | None:
    """Dropout of a reference ResNet's residual blocks (``...conv_block.<i>``), from the gap
    between each block's two convs; None when the file has no residual blocks."""
    conv_indices: dict[str, list[int]] = {}
    for layer in _convs(layers):
        block, sep, index = layer.prefix.rpartition(".conv_block.")
        if sep and index.isdigit():
            conv_indices.setdefault(block, []).append(int(index))
    gaps = {b - a for a, b in (sorted(ix) for ix in conv_indices.values() if len(ix) == 2)}
    if not gaps:
        return None
    if len(gaps) > 1 or gaps.isdisjoint(_BLOCK_CONV_GAP):
        raise CheckpointError(f"its residual blocks are not laid out as the reference's (convs "
                              f"{', '.join(map(str, sorted(gaps)))} modules apart)")
    return _BLOCK_CONV_GAP[gaps.pop()]


def read_reference_generator(state: Mapping[str, Tensor]) -> ReferenceGenerator:
    layers = reference_layers(state)
    convs = _convs(layers)
    if not convs or "bias" not in convs[-1].tensors:   # every generator's last conv keeps its bias
        raise CheckpointError("not a generator of the reference implementation (no conv layers, "
                              "or a last conv without bias)")
    first = convs[0].tensors["weight"]
    return ReferenceGenerator(layers, input_nc=first.shape[1], output_nc=convs[-1].tensors["bias"].shape[0],
                              ngf=first.shape[0], norm=infer_reference_norm(layers), dropout=_block_dropout(layers))


def reference_generator_options(read: ReferenceGenerator, options: Mapping[str, Any]) -> dict[str, Any]:
    """The option values that describe the reference file ``read`` (``GENERATORS.from_options``
    turns them, over ``options``, into its spec). Where the file allows several values, the
    one in ``options`` (typed or default) is kept: a --netG whose layers are laid out the same
    (unet for unet_256), a norm that computes the reference's (syncbatch for batch)."""
    norm = options.get("norm")
    found: dict[str, Any] = {"input_nc": read.input_nc, "output_nc": read.output_nc, "ngf": read.ngf,
                             "norm": norm if REFERENCE_NORM_OF.get(norm) == read.norm else read.norm,
                             "upsample": REFERENCE_UPSAMPLE}
    if read.dropout is not None:
        found["no_dropout"] = not read.dropout
    fits = _generator_fits(read.layers, {**options, **found})
    if not fits:
        raise CheckpointError(f"its {len(_structure(read.layers))} layers with weights fit no --netG "
                              f"({', '.join(GENERATORS.names())}) at any depth")
    found.update(next((fit for fit in fits if fit["netG"] == options.get("netG")), fits[0]))
    return found


def convert_reference_generator(state: Mapping[str, Tensor], net: nn.Module) -> dict[str, Tensor]:
    """``<epoch>_net_G.pth`` of the reference -> a state_dict for our ``net`` (whose ``spec`` says
    what was asked for); raises CheckpointError naming the wrong option."""
    return convert_reference_state(state, net, net.spec.norm, _generator_hints(net.spec))


def convert_reference_discriminator(state: Mapping[str, Tensor], net: nn.Module) -> dict[str, Tensor]:
    """``<epoch>_net_D.pth`` of the reference -> a state_dict for our ``net`` (its ``spec``: netD,
    ndf, n_layers_D, norm, input_nc + output_nc channels in)."""
    return convert_reference_state(state, net, net.spec.norm, _discriminator_hints(net.spec))


def reference_discriminator_options(state: Mapping[str, Tensor], options: Mapping[str, Any]) -> dict[str, Any]:
    """The --netD, --n_layers_D and --ndf that describe a reference discriminator file, over
    ``options`` (which give G's channels, from which D's input is derived). As for G, a value in
    ``options`` that fits the file is kept (``basic`` for a 3-layer file rather than ``n_layers``)."""
    layers = reference_layers(state)
    convs = _convs(layers)
    if not convs:
        raise CheckpointError("not a discriminator of the reference implementation (no conv layers)")
    first = convs[0].tensors["weight"]
    found: dict[str, Any] = {"ndf": first.shape[0]}
    norm = infer_reference_norm(layers)
    if REFERENCE_NORM_OF.get(options.get("norm")) != norm:
        raise CheckpointError(f"it was saved with {_NORM_EVIDENCE[norm]}, its generator with another norm")
    fits = _discriminator_fits(layers)
    if not fits:
        raise CheckpointError(f"its {len(_structure(layers))} layers with weights fit no --netD "
                              f"({', '.join(DISCRIMINATORS.names())})")
    asked = (options.get("netD"), options.get("n_layers_D"))
    same_name = [fit for fit in fits if fit[0] == asked[0]]
    found["netD"], found["n_layers_D"] = asked if asked in fits else (same_name or fits)[0]
    if sum(name == found["netD"] for name, _ in fits) == _MAX_D_LAYERS:   # a layout --n_layers_D does not change
        found["n_layers_D"] = asked[1]
    channels = DISCRIMINATORS.from_options({**options, **found}).input_nc
    if channels != first.shape[1]:
        raise CheckpointError(f"it takes {first.shape[1]} channels in, but its generator's input and output "
                              f"give {channels}")
    return found


def reference_run_options(g_path: Path, d_path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture options a reference run trained with, read from its G and D files (which
    record no options): what a resume from them takes for every such option left untyped."""
    g_state, d_state = load_file(g_path), load_file(d_path)   # each names its file in its errors
    found: dict[str, Any] = {}
    for path, read in ((g_path, lambda: reference_generator_options(read_reference_generator(g_state), options)),
                       (d_path, lambda: reference_discriminator_options(d_state, {**options, **found}))):
        try:
            found.update(read())
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None
    if "no_dropout" not in found:   # a U-Net: its weights do not show it
        dropout = "off" if options.get("no_dropout") else "on"
        log.info("%s: a U-Net's weights do not record whether it trained with dropout; training goes on with "
                 "dropout %s (%s)", g_path.name, dropout,
                 "--no_dropout" if dropout == "off" else "add --no_dropout if it trained without")
    return found
