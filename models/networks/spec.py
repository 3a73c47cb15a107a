"""Architecture specs: a network family's hyperparameters as one typed, frozen dataclass.

A spec is the single description of a network's shape. Its fields are the network class's
keyword arguments (``build`` calls ``Network(**fields)``, with the norm name resolved); its
field metadata says how each field appears on the command line (options/architecture.py
derives the flags from it); ``as_dict`` is what every checkpoint and generator file stores,
and ``from_dict`` reads it back. Adding a hyperparameter is one field here plus its use in the
network.

A registered name (``--netG unet_256``) is a preset: a spec class plus the fields it fixes
(``num_downs=8``); the other fields come from the options.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from torch import nn

from models.networks.upsample import DEFAULT_UPSAMPLE, UPSAMPLERS
from models.norms import NORMS
from util.registry import Registry


@dataclass(frozen=True)
class Flag:
    """How a spec field appears on the command line. ``shape``: the value decides the layout of
    the weights, so a checkpoint's value wins over the defaults and a typed contradiction is an
    error; otherwise (dropout) inference keeps the checkpoint's network and a typed value changes
    what it does (models/load_generator.py: --no_dropout -> dropout off)."""
    help: str
    name: str = ""                      # the option's name when it is not the field's
    minimum: int | None = None
    maximum: int | None = None
    choices: Registry | None = None     # --help lists the registry's entries
    invert: bool = False                # a switch that sets the field to False (--no_dropout)
    shape: bool = True


def arch_field(default: Any, flag: Flag | None = None,
               derive: Callable[[Mapping[str, Any]], Any] | None = None) -> Any:
    """A spec field: set from the option ``flag`` names, or computed from the options by
    ``derive`` (D's input channels), or only by a preset (no flag, no derive)."""
    return field(default=default, metadata={"flag": flag, "derive": derive})


def flag_of(f: dataclasses.Field) -> Flag | None:
    return f.metadata.get("flag")


def flag_name(f: dataclasses.Field) -> str:
    flag = flag_of(f)
    return (flag.name if flag and flag.name else f.name)


@dataclass(frozen=True)
class NetSpec:
    """Base of every spec. ``name`` is the registered preset (not a network argument)."""
    network: ClassVar[Callable[..., nn.Module]]
    family: ClassVar[str]
    name: str

    def kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}

    def build(self) -> nn.Module:
        kwargs = self.kwargs()
        if "norm" in kwargs:
            kwargs["norm"] = NORMS.get(kwargs["norm"])  # the name resolved once, here
        net = type(self).network(**kwargs)
        net.spec = self  # as nanoGPT's model.config: what the network is, for whoever holds it
        return net

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "fields": self.kwargs()}

    def arch_fields(self) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(self) if f.name != "name"]


@dataclass(frozen=True)
class Preset:
    """A registered name: its spec class and the fields the name fixes."""
    spec: type[NetSpec]
    fixed: Mapping[str, Any] = field(default_factory=dict)


class SpecRegistry(Registry[Preset]):
    """Presets by name (``--netG``, ``--netD``) and the spec classes by family."""

    def __init__(self, option: str, role: str) -> None:
        super().__init__(option)
        self.role = role                    # the option holding the name, e.g. "netG"
        self.families: dict[str, type[NetSpec]] = {}

    def add_preset(self, name: str, spec: type[NetSpec], help: str = "", **fixed: Any) -> None:
        self.families.setdefault(spec.family, spec)
        self.add(name, Preset(spec, fixed), help=help)

    def spec(self, name: str, **values: Any) -> NetSpec:
        """The spec of preset ``name`` with ``values`` for its other fields; values of fields this
        family does not have are ignored (as on the command line: --n_layers_D with --netD pixel)."""
        preset = self.get(name)
        own = {f.name for f in dataclasses.fields(preset.spec)} - {"name"}
        chosen = {k: v for k, v in values.items() if k in own}
        return preset.spec(name=self.canonical(name), **{**chosen, **preset.fixed})

    def from_options(self, options: Mapping[str, Any]) -> NetSpec:
        """The spec the options describe (parsed options, or the options dict of an older file);
        an option that is absent takes the field's default."""
        preset = self.get(options[self.role])
        values: dict[str, Any] = {}
        for f in dataclasses.fields(preset.spec):
            derive, flag = f.metadata.get("derive"), flag_of(f)
            if derive is not None:
                values[f.name] = derive(options)
            elif flag is not None and flag_name(f) in options:
                value = options[flag_name(f)]
                values[f.name] = (not value) if flag.invert else value
        return self.spec(options[self.role], **values)

    def from_dict(self, saved: Mapping[str, Any]) -> NetSpec:
        spec = self.families.get(saved["family"])
        if spec is None:
            raise ValueError(f"unknown {self.role} family '{saved['family']}' (known: {', '.join(self.families)})")
        return spec(name=saved["name"], **saved["fields"])

    def flag_fields(self) -> list[dataclasses.Field]:
        """Every field with a flag, once per flag name, in registration order."""
        seen: dict[str, dataclasses.Field] = {}
        for spec in self.families.values():
            for f in dataclasses.fields(spec):
                if flag_of(f) is not None:
                    seen.setdefault(flag_name(f), f)
        return list(seen.values())


def as_options(spec: NetSpec, role: str) -> dict[str, Any]:
    """The option values that describe ``spec`` (the inverse of ``from_options``), e.g. so that
    test.py takes the architecture from a checkpoint."""
    out: dict[str, Any] = {role: spec.name}
    for f in spec.arch_fields():
        flag = flag_of(f)
        if flag is not None:
            value = getattr(spec, f.name)
            out[flag_name(f)] = (not value) if flag.invert else value
    return out


def _sentence(option: str, saved: Any, asked: Any) -> str:
    return f"checkpoint was trained with --{option} {saved}, you asked for --{option} {asked}"


def mismatch(saved: NetSpec, current: NetSpec, role: str) -> str | None:
    """The first difference between a checkpoint's spec and this run's that changes the
    weights, as one sentence (None: the checkpoint fits)."""
    if saved.name != current.name:
        return _sentence(role, saved.name, current.name)
    for f in saved.arch_fields():
        flag = flag_of(f)
        before, now = getattr(saved, f.name), getattr(current, f.name)
        if before == now or (flag is not None and not flag.shape):
            continue
        if flag is None:   # derived (D's input channels) or fixed by the preset
            return f"checkpoint's {role} has {f.name} {before}, this run's {now}"
        return _sentence(flag_name(f), *((not before, not now) if flag.invert else (before, now)))
    return None


def typed_mismatch(saved: NetSpec, options: Mapping[str, Any], typed: set[str], role: str) -> str | None:
    """The first typed option that contradicts a checkpoint's spec (the options not typed are
    taken from the checkpoint, so they cannot)."""
    if role in typed and options[role] != saved.name:
        return _typed_sentence(role, saved.name, options[role])
    for f in saved.arch_fields():
        flag, option = flag_of(f), flag_name(f)
        if flag is None or not flag.shape or option not in typed:
            continue
        shown = (not getattr(saved, f.name)) if flag.invert else getattr(saved, f.name)
        if options[option] != shown:
            return _typed_sentence(option, shown, options[option])
    return None


def _typed_sentence(option: str, saved: Any, asked: Any) -> str:
    # The way out, since inference takes every architecture option not typed from the checkpoint
    # (a typed `--netG unet` against unet_128 reads as a family name, not as "as trained").
    return f"{_sentence(option, saved, asked)}; leave --{option} out (it comes from the checkpoint)"


# -- what every generator and every discriminator has ---------------------------------------------
# Defaults are the command line's (the paper's): 3 -> 3 channels, 64 filters, batch norm, dropout.
def _in_nc() -> Any:
    return arch_field(3, Flag("channels of A (3 RGB, 1 gray)", minimum=1))


def _out_nc() -> Any:
    return arch_field(3, Flag("channels of B (3 RGB, 1 gray)", minimum=1))


def _norm() -> Any:
    return arch_field("batch", Flag("", choices=NORMS))


@dataclass(frozen=True)
class GeneratorSpec(NetSpec):
    input_nc: int = _in_nc()
    output_nc: int = _out_nc()
    ngf: int = arch_field(64, Flag("generator filters in the last conv layer", minimum=1))
    norm: str = _norm()
    dropout: bool = arch_field(True, Flag("no dropout in the generator", name="no_dropout", invert=True,
                                          shape=False))
    upsample: str = arch_field(DEFAULT_UPSAMPLE, Flag("how the generator's decoder doubles the resolution:",
                                                      choices=UPSAMPLERS))

    @property
    def size_multiple(self) -> int:
        """Input heights and widths must be multiples of this."""
        raise NotImplementedError


def _conditional_channels(options: Mapping[str, Any]) -> int:
    # A conditional D judges A and B together, concatenated on channels.
    return options.get("input_nc", 3) + options.get("output_nc", 3)


@dataclass(frozen=True)
class DiscriminatorSpec(NetSpec):
    input_nc: int = arch_field(6, derive=_conditional_channels)
    ndf: int = arch_field(64, Flag("discriminator filters in the first conv layer", minimum=1))
    norm: str = _norm()
