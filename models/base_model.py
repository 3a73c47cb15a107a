"""What every model shares: its networks, optimizers and schedulers, and their state."""
from __future__ import annotations

import argparse
import copy
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, ContextManager, TypeVar

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models.coarse_to_fine import fix_global_for_epoch, init_global_from
from models.init import init_weights
from models.networks import ROLES, architecture_from_options
from models.networks.spec import mismatch
from models.reference_compat import convert_reference_discriminator, convert_reference_generator
from models.schedulers import EpochScheduler, Schedule
from models.sync_batchnorm import make_local
from engine.distributed import Runtime, unwrap
from engine.speed import (autocast, check_amp_supported, compile_network, make_adam, make_grad_scaler,
                          resolve_amp, to_channels_last)


# Runs one named part of a training step: ``phase("G_forward", fn)`` returns ``fn()``.
Phase = Callable[[str, Callable[[], Any]], Any]
ModelT = TypeVar("ModelT", bound="BaseModel")


def run_phase(name: str, fn: Callable[[], Any]) -> Any:
    return fn()


def trainable(net: nn.Module) -> tuple[bool, ...]:
    """Which of ``net``'s parameters train (their requires_grad flags, in order)."""
    return tuple(p.requires_grad for p in net.parameters())


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


class BaseModel:
    def __init__(self, opt: argparse.Namespace, runtime: Runtime) -> None:
        self.opt = opt
        self.runtime = runtime
        self.device = runtime.device
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, EpochScheduler] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self.image_paths: list[str] = []
        # Speed options (options/speed.py); getattr so that option sets from before them still work.
        self.amp: str = resolve_amp(getattr(opt, "amp", "none"), self.device)
        self.channels_last: bool = getattr(opt, "channels_last", False)
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # How each network was wrapped (wrap_networks) and which of its parameters trained then.
        self.wrap: Callable[[str, nn.Module], nn.Module] | None = None
        self.wrapped_trainable: dict[str, tuple[bool, ...]] = {}
        check_amp_supported(self.device, self.amp)

    # -- building -------------------------------------------------------------------------
    def make_network(self, role: str) -> nn.Module:
        """Network ``role`` ("G" or "D") as the options describe it (its spec, kept as ``net.spec``)."""
        net = ROLES[role].from_options(vars(self.opt)).build()
        return self.speed_up(role, init_weights(net, self.opt.init_type, self.opt.init_gain).to(self.device))

    def make_generator(self) -> nn.Module:
        net = self.make_network("G")
        if getattr(self.opt, "grad_checkpoint", False):
            unwrap(net).set_grad_checkpoint(True)
        source = getattr(self.opt, "init_global_from", None)
        if source and self.opt.is_train:
            # A resumed run reads it too, then its checkpoint's weights replace it.
            init_global_from(unwrap(net), Path(self.opt.checkpoints_dir) / source, architecture_from_options)
        return net

    def make_discriminator(self) -> nn.Module:
        return self.make_network("D")

    def speed_up(self, name: str, net: nn.Module) -> nn.Module:
        """channels_last and torch.compile per the speed options. The compile wrapper shares the
        parameters, so optimizers and checkpoints (through ``unwrap``) see the plain network."""
        if self.channels_last:
            net = to_channels_last(net)
        if getattr(self.opt, "compile", False):
            net = compile_network(net, name, getattr(self.opt, "compile_mode", "auto"), self.device)
        return net

    def begin_step(self) -> None:
        """Mark a new training step for CUDA graphs (torch.compile's reduce-overhead mode), so
        the graphs may reuse the previous step's output memory."""
        if getattr(self.opt, "compile", False) and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()

    def make_adam(self, net: nn.Module) -> torch.optim.Adam:
        return make_adam(net.parameters(), self.opt.lr, (self.opt.beta1, 0.999), self.device)

    def autocast(self) -> ContextManager[Any]:
        return autocast(self.device, self.amp)

    def make_schedulers(self) -> None:
        opt = self.opt
        schedule = Schedule(**{f.name: getattr(opt, f.name) for f in fields(Schedule)})
        self.schedulers = {name: EpochScheduler(opt.lr_policy, o, schedule) for name, o in self.optimizers.items()}

    def trial_copy(self: ModelT, amp: str) -> ModelT:
        """A twin that trains in ``amp`` on deep copies of the plain networks (no DDP, no
        compile wrapper), with its own optimizers, image pool and averages: steps taken on it
        (the ``--amp auto`` probe) leave this model exactly as it was. Fresh loss scalers, as
        ``amp`` may differ from this model's. The global RNG is the caller's to save."""
        plain = {name: unwrap(net) for name, net in self.nets.items()}
        attributes = {**vars(self), "nets": plain, "scalers": {}}
        # The options and the runtime are shared, not copied: read-only, and a runtime may
        # stand for a process group. One deepcopy call, so the copied optimizers hold the
        # copied parameters.
        memo = {id(self.opt): self.opt, id(self.runtime): self.runtime}
        twin = copy.copy(self)
        twin.__dict__.update(copy.deepcopy(attributes, memo))
        for net in twin.nets.values():
            make_local(net)   # the probe runs on rank 0 alone: synced layers would wait for the others
        twin.set_amp(amp)
        return twin

    def set_amp(self, amp: str) -> None:
        """Train in ``amp`` from here on, with fresh loss scalers where it needs them (one per
        optimizer: an overflow in one network must skip that network's step only). A resume
        calls this before loading the checkpoint, whose scaler states then replace the fresh ones."""
        self.amp = resolve_amp(amp, self.device)
        check_amp_supported(self.device, self.amp)
        scalers = {name: make_grad_scaler(self.device, self.amp) for name in self.optimizers}
        self.scalers = {name: s for name, s in scalers.items() if s is not None}

    # -- wrapping -------------------------------------------------------------------------
    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by ``wrap(name, net)`` (DDP, torch.compile); saving and rank-0
        work reach the plain module through ``engine.distributed.unwrap``."""
        self.wrap = wrap
        self.nets = {name: wrap(name, net) for name, net in self.nets.items()}
        self.wrapped_trainable = {name: trainable(net) for name, net in self.nets.items()}

    def rewrap_if_changed(self, name: str) -> None:
        """DDP fixes when it wraps a network which parameters it reduces; network ``name``, whose
        trainable parameters changed since (``--niter_fix_global``'s epochs), is wrapped again,
        or its reducer would wait for gradients that never come, or leave new ones unreduced.
        (D's flags change within every step, for G's update, and must not count.)"""
        if self.wrap is None or not self.runtime.distributed:
            return
        net, now = self.nets[name], trainable(self.nets[name])
        if now != self.wrapped_trainable[name]:
            self.nets[name] = self.wrap(name, self.without_ddp(net))
            self.wrapped_trainable[name] = now

    @staticmethod
    def without_ddp(net: nn.Module) -> nn.Module:
        """The network minus a DDP wrapper only (a compiled network stays compiled)."""
        return net.module if isinstance(net, DistributedDataParallel) else net

    @property
    def net_G(self) -> nn.Module:
        return self.nets["G"]

    @property
    def net_D(self) -> nn.Module:
        return self.nets["D"]

    def describe(self) -> list[str]:
        """One line per network: its class and parameter count (logged at start-up)."""
        lines = []
        for name, net in self.nets.items():
            plain = unwrap(net)
            count = sum(p.numel() for p in plain.parameters())
            lines.append(f"net {name}: {type(plain).__name__}, {count / 1e6:.3f} M parameters")
        return lines

    # -- modes ----------------------------------------------------------------------------
    def train(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval(self) -> None:
        for net in self.nets.values():
            net.eval()

    def begin_epoch(self, epoch: int) -> None:
        """Before the first step of ``epoch`` (also when resuming inside it): what trains then."""
        fix_global_for_epoch(unwrap(self.net_G), epoch, getattr(self.opt, "niter_fix_global", 0))
        self.rewrap_if_changed("G")

    def step_schedulers(self, metric: float | None = None) -> float:
        for scheduler in self.schedulers.values():
            scheduler.step(metric)
        return self.current_lr()

    def current_lr(self) -> float:
        optimizer = next(iter(self.optimizers.values()), None)
        return optimizer.param_groups[0]["lr"] if optimizer else 0.0

    # -- inputs and outputs ---------------------------------------------------------------
    def set_input(self, batch: dict) -> None:
        self.inputs = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        if self.channels_last:
            self.inputs = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                           for k, v in self.inputs.items()}
        paths = batch.get("A_paths", [])
        self.image_paths = [paths] if isinstance(paths, str) else list(paths)

    def current_visuals(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "nets": {name: unwrap(net).state_dict() for name, net in self.nets.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            # fp16 loss scales: part of exact resume (a reset scale re-skips the first steps).
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
        }

    # -- architecture: what the engine's checkpoint files store and compare ------------------
    @property
    def specs(self) -> dict[str, dict]:
        """The spec of each network as plain values (what a checkpoint stores)."""
        return {name: unwrap(net).spec.as_dict() for name, net in self.nets.items()}

    @staticmethod
    def architecture_from_options(options: dict) -> dict[str, dict]:
        """The specs of a file that kept only its options (an earlier format)."""
        return architecture_from_options(options)

    def architecture_mismatch(self, saved: dict[str, dict]) -> str | None:
        """The first difference between a checkpoint's specs and this model's, as one sentence."""
        for name, net in self.nets.items():
            if name in saved:
                role = ROLES[name]
                problem = mismatch(role.from_dict(saved[name]), unwrap(net).spec, role.role)
                if problem:
                    return problem
        return None

    def load_reference_net(self, name: str, state: dict[str, torch.Tensor]) -> None:
        """Load network ``name`` ("G" or "D") from a state_dict saved by the reference
        implementation, converted here so that the engine, which reads the file, needs no
        knowledge of the reference's layout; raises CheckpointError naming the wrong option."""
        convert = {"G": convert_reference_generator, "D": convert_reference_discriminator}[name]
        net = unwrap(self.nets[name])
        net.load_state_dict(convert(state, net))

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        for name, net in self.nets.items():
            unwrap(net).load_state_dict(state["nets"][name])
        if nets_only:
            return
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            # A checkpoint from an fp32 or bf16 run has none: the scaler starts fresh.
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])
