"""The reference training steps of pix2pix and CycleGAN, on an aebench model's own networks.

A faithful re-writing of `optimize_parameters` in junyanz/pytorch-CycleGAN-and-pix2pix (models/pix2pix_model.py,
models/cycle_gan_model.py), with its `GANLoss` (a 0-d label buffer expanded to the prediction's shape, BCE-with-logits
for `vanilla`, MSE for `lsgan`), `BaseModel.set_requires_grad`, `torch.nn.L1Loss`, its Python-`random` `ImagePool`
and its two Adam optimizers (lr 2e-4, β (0.5, 0.999), `zero_grad()` as of torch 2: gradients set to None). It is a
yardstick, not a baseline: the speed benchmarks time aebench's `training_step` against it on the same networks and
batch, and the GPU check reports both. The authors' defaults that an aebench model does not share (its GAN mode,
λs) are taken from the model's config, so both steps optimise the same objective.

Where the recipes coincide the two steps make the same update (tests/test_translation_speed.py checks it). They
differ where aebench chose otherwise: aebench's pix2pix critic sees the real pair before the generated one (the
reference: generated first), which only reorders batch-norm running-statistics updates, and aebench's pool draws
from its own torch generator (the reference: Python's `random`).

Mapping of names: the reference's A/B are aebench's x/z. pix2pix (one direction): netG = generator_z, netD =
critic_z, real_A = x, real_B = z. CycleGAN: G_A = generator_z (x → z), G_B = generator_x, D_A = critic_z (judges
z-domain images), D_B = critic_x.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import Batch, Model

Step = Callable[[Batch], None]


class GANLoss(nn.Module):
    """The reference GANLoss: the loss of `prediction` against the real (1) or fake (0) label, expanded."""

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0):
        super().__init__()
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        if gan_mode == "lsgan":
            self.loss = nn.MSELoss()
        elif gan_mode == "vanilla":
            self.loss = nn.BCEWithLogitsLoss()
        else:
            raise AebenchError(f"reference GANLoss: gan_mode '{gan_mode}' is not lsgan or vanilla")

    def __call__(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = self.real_label if target_is_real else self.fake_label
        return self.loss(prediction, target.expand_as(prediction))


class ImagePool:
    """The reference image pool: per image, while filling keep and return it; then with p = 0.5 return a stored one
    (a clone) and store the new one in its place (Python's `random`, as the authors')."""

    def __init__(self, pool_size: int, rng: random.Random):
        self.pool_size, self.rng = pool_size, rng
        self.num_imgs, self.images = 0, []

    def query(self, images: Tensor) -> Tensor:
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                return_images.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                random_id = self.rng.randint(0, self.pool_size - 1)  # inclusive
                tmp = self.images[random_id].clone()
                self.images[random_id] = image
                return_images.append(tmp)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)


def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
    """BaseModel.set_requires_grad: every parameter's flag, one by one."""
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


def adam(*nets: nn.Module, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam([p for net in nets for p in net.parameters()], lr=lr, betas=betas)


def pix2pix_step(model: Model) -> Step:
    """Pix2PixModel.optimize_parameters over the model's x → z networks (the reference learns one direction)."""
    netG, netD = model.generator_z, model.critic_z
    criterionGAN = GANLoss("vanilla").to(model.device)
    criterionL1 = nn.L1Loss()
    lambda_L1 = model.config.l1_weight
    optimizer_G, optimizer_D = adam(netG), adam(netD)

    def optimize_parameters(batch: Batch) -> None:
        real_A, real_B = batch["x"], batch["z"]
        fake_B = netG(real_A)  # forward()
        # update D (backward_D; pix2pix's pool has size 0: query returns its input)
        set_requires_grad([netD], True)
        optimizer_D.zero_grad()
        fake_AB = torch.cat((real_A, fake_B), 1)
        loss_D_fake = criterionGAN(netD(fake_AB.detach()), False)
        real_AB = torch.cat((real_A, real_B), 1)
        loss_D_real = criterionGAN(netD(real_AB), True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        optimizer_D.step()
        # update G (backward_G)
        set_requires_grad([netD], False)
        optimizer_G.zero_grad()
        fake_AB = torch.cat((real_A, fake_B), 1)
        loss_G_GAN = criterionGAN(netD(fake_AB), True)
        loss_G_L1 = criterionL1(fake_B, real_B) * lambda_L1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        optimizer_G.step()

    return optimize_parameters


def cyclegan_step(model: Model) -> Step:
    """CycleGANModel.optimize_parameters over the model's four networks, with the model's λs and pool size."""
    netG_A, netG_B, netD_A, netD_B = model.generator_z, model.generator_x, model.critic_z, model.critic_x
    config = model.config
    lambda_A = lambda_B = config.cycle_weight
    lambda_idt = config.identity_weight
    criterionGAN = GANLoss("lsgan").to(model.device)
    criterionCycle, criterionIdt = nn.L1Loss(), nn.L1Loss()
    rng = random.Random(0)  # the authors draw from the global `random`; a private one leaves the caller's alone
    fake_A_pool, fake_B_pool = ImagePool(config.pool_size, rng), ImagePool(config.pool_size, rng)
    optimizer_G, optimizer_D = adam(netG_A, netG_B), adam(netD_A, netD_B)

    def backward_D_basic(netD: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        loss_D_real = criterionGAN(netD(real), True)
        loss_D_fake = criterionGAN(netD(fake.detach()), False)
        loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D

    def optimize_parameters(batch: Batch) -> None:
        real_A, real_B = batch["x"], batch["z"]
        # forward()
        fake_B = netG_A(real_A)
        rec_A = netG_B(fake_B)
        fake_A = netG_B(real_B)
        rec_B = netG_A(fake_A)
        # G_A and G_B (backward_G)
        set_requires_grad([netD_A, netD_B], False)
        optimizer_G.zero_grad()
        if lambda_idt > 0:
            loss_idt_A = criterionIdt(netG_A(real_B), real_B) * lambda_B * lambda_idt
            loss_idt_B = criterionIdt(netG_B(real_A), real_A) * lambda_A * lambda_idt
        else:
            loss_idt_A = loss_idt_B = 0
        loss_G_A = criterionGAN(netD_A(fake_B), True)
        loss_G_B = criterionGAN(netD_B(fake_A), True)
        loss_cycle_A = criterionCycle(rec_A, real_A) * lambda_A
        loss_cycle_B = criterionCycle(rec_B, real_B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        optimizer_G.step()
        # D_A and D_B (backward_D_A, backward_D_B)
        set_requires_grad([netD_A, netD_B], True)
        optimizer_D.zero_grad()
        backward_D_basic(netD_A, real_B, fake_B_pool.query(fake_B))
        backward_D_basic(netD_B, real_A, fake_A_pool.query(fake_A))
        optimizer_D.step()

    return optimize_parameters


REFERENCE_STEPS: dict[str, Callable[[Model], Step]] = {"pix2pix": pix2pix_step, "cyclegan": cyclegan_step}


def make_reference_step(model: Model) -> Step:
    """One reference training step on an aebench batch ({"x", "z"}), with fresh reference optimizers (Adam 2e-4,
    β (0.5, 0.999)) over `model`'s networks. The step updates the model in place and returns nothing.

    It leaves the critics' parameters as the reference does (pix2pix: requires_grad False after a step), so time it
    on its own copy of the model rather than alternating it with aebench's step on the same one.
    """
    if model.name not in REFERENCE_STEPS:
        raise AebenchError(f"no reference step for model '{model.name}' (have: {', '.join(REFERENCE_STEPS)})")
    return REFERENCE_STEPS[model.name](model)
