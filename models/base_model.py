"""What every model shares: its networks, optimizers and schedulers, and their state."""
from __future__ import annotations

import argparse
from typing import Callable

import torch
from torch import nn

from models.init import init_weights
from models.networks import build_discriminator, build_generator
from models.norms import norm_spec
from models.schedulers import EpochScheduler
from util.distributed import Runtime, unwrap


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

    # -- building -------------------------------------------------------------------------
    def make_generator(self) -> nn.Module:
        opt = self.opt
        net = build_generator(opt.netG, opt.input_nc, opt.output_nc, opt.ngf, norm_spec(opt.norm),
                              dropout=not opt.no_dropout)
        return init_weights(net, opt.init_type, opt.init_gain).to(self.device)

    def make_discriminator(self) -> nn.Module:
        opt = self.opt
        # Conditional D: it judges A and B together.
        net = build_discriminator(opt.netD, opt.input_nc + opt.output_nc, opt.ndf, opt.n_layers_D,
                                  norm_spec(opt.norm))
        return init_weights(net, opt.init_type, opt.init_gain).to(self.device)

    def make_schedulers(self) -> None:
        opt = self.opt
        self.schedulers = {name: EpochScheduler(opt.lr_policy, o, opt.n_epochs, opt.n_epochs_decay,
                                                opt.epoch_count, opt.lr_decay_iters)
                           for name, o in self.optimizers.items()}

    # -- wrapping -------------------------------------------------------------------------
    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by ``wrap(name, net)`` (DDP, torch.compile); saving and rank-0
        work reach the plain module through ``util.distributed.unwrap``."""
        self.nets = {name: wrap(name, net) for name, net in self.nets.items()}

    @property
    def net_G(self) -> nn.Module:
        return self.nets["G"]

    @property
    def net_D(self) -> nn.Module:
        return self.nets["D"]

    # -- modes ----------------------------------------------------------------------------
    def train(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval(self) -> None:
        for net in self.nets.values():
            net.eval()

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
        }

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        for name, net in self.nets.items():
            unwrap(net).load_state_dict(state["nets"][name])
        if nets_only:
            return
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
