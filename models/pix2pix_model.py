"""pix2pix (Isola et al. 2017): a U-Net G trained against a conditional PatchGAN D plus L1.

Optional, off by default: discriminator feature matching (``--lambda_feat``, pix2pixHD) and a
moving average of G's weights (``--ema_decay``) kept next to G and used for inference."""
from __future__ import annotations

import argparse

import torch

from models.base_model import BaseModel, Phase, run_phase, set_requires_grad
from models.ema import WeightAverage
from models.feature_matching import feature_matching_loss, over_scales
from models.image_pool import ImagePool
from models.l1_terms import l1_term
from models.losses import GAN_LOSSES, gradient_penalty
from engine.distributed import Runtime, unwrap


class Pix2PixModel(BaseModel):
    def __init__(self, opt: argparse.Namespace, runtime: Runtime) -> None:
        super().__init__(opt, runtime)
        self.nets["G"] = self.make_generator()
        self.is_train = opt.is_train
        self.ema: WeightAverage | None = None
        if not self.is_train:
            return
        self.nets["D"] = self.make_discriminator()
        entry = GAN_LOSSES.entry(opt.gan_mode)
        self.gan = entry.obj()
        self.gp_weight: float = entry.meta["gp_weight"]
        self.lambda_l1 = opt.lambda_L1
        self.l1_downsample: int = getattr(opt, "l1_downsample", 1)
        self.lambda_feat: float = getattr(opt, "lambda_feat", 0.0)
        ema_decay: float = getattr(opt, "ema_decay", 0.0)
        self.ema = WeightAverage(unwrap(self.net_G), ema_decay) if ema_decay > 0 else None
        self.fake_pool = ImagePool(opt.pool_size, torch.Generator().manual_seed(opt.seed))
        self.optimizers = {"G": self.make_adam(self.net_G), "D": self.make_adam(self.net_D)}
        # One scaler per optimizer: G's and D's gradients differ in size by orders of magnitude.
        self.set_amp(self.amp)
        self.make_schedulers()

    def forward(self) -> None:
        self.real_A = self.inputs["A"]
        with self.autocast():
            self.fake_B = self.net_G(self.real_A)

    @torch.no_grad()
    def test(self) -> None:
        self.forward()
        # Consumers (pages, metrics, numpy) expect fp32 whatever the autocast dtype.
        self.fake_B = self.fake_B.float()

    def backward_D(self) -> dict[str, torch.Tensor]:
        real_AB = torch.cat([self.real_A, self.inputs["B"]], 1)
        fake_AB = self.fake_pool.query(torch.cat([self.real_A, self.fake_B], 1).detach())
        with self.autocast():
            loss_fake = over_scales(self.gan.fake_loss, self.net_D(fake_AB))
            loss_real = over_scales(self.gan.real_loss, self.net_D(real_AB))
        # One backward for real and fake together: two backward calls through one DDP module
        # would desynchronize its gradient buckets.
        loss = 0.5 * (loss_fake + loss_real)
        losses = {"D_real": loss_real, "D_fake": loss_fake}
        if self.gp_weight > 0:
            # In fp32 and through the plain D: a double backward that neither fp16 nor
            # torch.compile handles.
            penalty = gradient_penalty(unwrap(self.net_D), real_AB.float(), fake_AB.float())
            loss = loss + self.gp_weight * penalty
            losses["D_GP"] = penalty
        self.scaled(loss, "D").backward()
        return losses

    def backward_G(self) -> dict[str, torch.Tensor]:
        fake_AB = torch.cat([self.real_A, self.fake_B], 1)
        # D is frozen here and nothing of it is updated: go around any DDP wrapper, whose
        # reducer would otherwise wait for D gradients that never come.
        net_D = self.without_ddp(self.net_D)
        losses: dict[str, torch.Tensor] = {}
        with self.autocast():
            if self.lambda_feat > 0:
                # One D pass over the fake pair gives both the verdicts and the features.
                fake_features = net_D.scale_features(fake_AB)
                loss_gan = over_scales(self.gan.generator_loss, [scale[-1] for scale in fake_features])
                with torch.no_grad():
                    real_features = net_D.scale_features(torch.cat([self.real_A, self.inputs["B"]], 1))
                losses["G_feat"] = feature_matching_loss(fake_features, real_features) * self.lambda_feat
            else:
                loss_gan = over_scales(self.gan.generator_loss, net_D(fake_AB))
        # L1 in fp32: under autocast fake_B may be bf16/fp16, and lambda 100 magnifies rounding.
        loss_l1 = l1_term(self.fake_B.float(), self.inputs["B"], self.l1_downsample) * self.lambda_l1
        losses.update(G_GAN=loss_gan, G_L1=loss_l1)
        self.scaled(sum(losses.values()), "G").backward()
        return losses

    def scaled(self, loss: torch.Tensor, name: str) -> torch.Tensor:
        scaler = self.scalers.get(name)
        return scaler.scale(loss) if scaler is not None else loss

    def step_optimizer(self, name: str) -> None:
        scaler = self.scalers.get(name)
        if scaler is None:
            self.optimizers[name].step()
            return
        # Skips the step when this network's gradients overflowed, then adapts the scale.
        scaler.step(self.optimizers[name])
        scaler.update()

    def train_step(self, phase: Phase = run_phase) -> dict[str, torch.Tensor]:
        """One step of D, then of G, on the current inputs: the only copy of the step, so
        training, the ``--amp auto`` probe (on a ``trial_copy``) and benchmarks/train_speed.py
        run the same code. ``phase(name, fn)`` runs each part; a benchmark passes a timer."""
        self.begin_step()
        phase("G_forward", self.forward)
        set_requires_grad(self.net_D, True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        losses_D = phase("D_forward_backward", self.backward_D)
        phase("optimizers", lambda: self.step_optimizer("D"))

        set_requires_grad(self.net_D, False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses_G = phase("G_backward_with_D_forward", self.backward_G)
        phase("optimizers", self.step_generator)
        # fp32 losses whatever the autocast dtype, so logs and checks read the same in every mode.
        return {k: v.detach().float() for k, v in {**losses_G, **losses_D}.items()}

    def step_generator(self) -> None:
        self.step_optimizer("G")
        if self.ema is not None:
            self.ema.update(unwrap(self.net_G))

    def current_visuals(self) -> dict[str, torch.Tensor]:
        visuals = {"real_A": self.real_A, "fake_B": self.fake_B}
        if "B" in self.inputs:
            visuals["real_B"] = self.inputs["B"]
        return {k: v.detach().float() for k, v in visuals.items()}

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.is_train:
            state["image_pool"] = self.fake_pool.state_dict()
        if self.ema is not None:
            # Beside "nets", not in it: the averaged G is never trained or wrapped, and
            # models/load_generator.py picks it for inference.
            state["ema"] = {"G": self.ema.state_dict()}
        return state

    def load_state_dict(self, state: dict, nets_only: bool = False) -> None:
        super().load_state_dict(state, nets_only)
        if self.is_train and not nets_only and "image_pool" in state:
            self.fake_pool.load_state_dict(state["image_pool"], self.device)
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"]["G"])
            else:
                # A checkpoint from a run without the average: it starts from the loaded G.
                self.ema = WeightAverage(unwrap(self.net_G), self.ema.decay)
