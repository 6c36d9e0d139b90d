"""A GAN on the 8x8 digits: two named optimizers, two losses to choose from, a quality metric.

Quality is the squared maximum mean discrepancy (MMD², unbiased, Gaussian kernels at several
bandwidths) between generated images and the held-out validation images, in pixel space: about
zero for two samples of the same distribution, large for noise. It is logged as ``val/mmd`` and
is the run's objective (``mode: min``). Under DDP it is computed over the validation images
of every rank, gathered.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_args._util.atomic import temporary_beside
from lightning_args.demos.config import GANLoss
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.modules.gather import gather_rows

Batch = dict[str, torch.Tensor]


def mmd2(
    x: torch.Tensor, y: torch.Tensor, scales: tuple[float, ...] = (0.5, 1.0, 2.0)
) -> torch.Tensor:
    """Unbiased MMD² between samples ``x`` and ``y`` (rows), Gaussian kernels whose bandwidths
    are ``scales`` times the median pairwise distance of ``y``.

    >>> g = torch.Generator().manual_seed(0)
    >>> a, b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    >>> bool(mmd2(a, b).abs() < 0.02), bool(mmd2(a + 3, b) > 0.5)
    (True, True)
    """
    x, y = x.flatten(1).double(), y.flatten(1).double()
    median = torch.cdist(y, y).median().clamp_min(1e-6)
    xx, yy, xy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    n, m = len(x), len(y)
    total = torch.zeros((), dtype=torch.float64)
    for scale in scales:
        gamma = 1.0 / (2 * (scale * median) ** 2)
        kxx, kyy, kxy = (-gamma * xx).exp(), (-gamma * yy).exp(), (-gamma * xy).exp()
        total = total + (
            (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
            - 2 * kxy.mean()
        )
    return total.float()


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class GAN(ConfiguredModule):
    """MLP generator (tanh output: expects images scaled to [-1, 1]) and discriminator over
    flattened 8x8 images.

    Trains with the named optimizers ``discriminator`` and ``generator`` (the generator's
    ``frequency`` sets critic steps per generator step). Every validation epoch it generates
    ``eval_samples`` images from a fixed noise, logs ``val/mmd`` against the validation images,
    and saves a grid of the first 64 as ``samples/epoch_<n>.png`` in the run directory (and to
    TensorBoard when that logger is on).

    Example:
        >>> gan = GAN(z_dim=8, hidden=[16])
        >>> tuple(gan.generate(torch.randn(3, 8)).shape)
        (3, 1, 8, 8)
    """

    def __init__(
        self,
        z_dim: int = 32,
        hidden: list[int] | None = None,
        loss: GANLoss | str = GANLoss.non_saturating,
        gp_weight: float = 10.0,
        image_shape: tuple[int, ...] | list[int] = (1, 8, 8),
        eval_samples: int = 512,
        input_key: str = "image",
    ) -> None:
        super().__init__()
        hidden = list(hidden or [256, 256])
        size = int(torch.tensor(image_shape).prod())
        self.image_shape = tuple(image_shape)
        self.z_dim = z_dim
        self.loss = GANLoss(loss)
        self.gp_weight = gp_weight
        self.eval_samples = eval_samples
        self.input_key = input_key
        self.generator = nn.Sequential(_mlp([z_dim, *hidden, size]), nn.Tanh())
        self.discriminator = _mlp([size, *hidden[::-1], 1])
        self.register_buffer(
            "eval_noise",
            torch.randn(eval_samples, z_dim, generator=torch.Generator().manual_seed(0)),
        )
        self._real: list[torch.Tensor] = []

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images for noise ``z`` (rows)."""
        flat: torch.Tensor = self.generator(z)
        return flat.view(len(z), *self.image_shape)

    def _critic(self, images: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.discriminator(images.flatten(1)).squeeze(1)
        return scores

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real = batch[self.input_key]
        z = torch.randn(len(real), self.z_dim, device=real.device)
        with self.opt("discriminator") as d:
            fake = self.generate(z).detach()
            d_loss = self._discriminator_loss(real, fake)
            d.backward(d_loss)
        self.log_interval_mean("train/d_loss", d_loss)
        if self.opt("generator").due:
            with self.opt("generator") as g:
                scores = self._critic(self.generate(z))
                if self.loss is GANLoss.wgan_gp:
                    g_loss = -scores.mean()
                else:
                    g_loss = nn.functional.softplus(-scores).mean()
                g.backward(g_loss)
            self.log_interval_mean("train/g_loss", g_loss)

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_scores, fake_scores = self._critic(real), self._critic(fake)
        if self.loss is GANLoss.non_saturating:
            softplus = nn.functional.softplus
            return softplus(-real_scores).mean() + softplus(fake_scores).mean()
        mix = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
        between = (mix * real + (1 - mix) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._critic(between).sum(), between, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss: torch.Tensor = fake_scores.mean() - real_scores.mean() + self.gp_weight * penalty
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._real.append(batch[self.input_key].detach())

    def _gathered_real(self) -> torch.Tensor:
        # An MMD is not a mean over batches: every rank computes it on all ranks' images (the
        # fake ones come from the same fixed noise everywhere), so each logs the same value.
        real, self._real = torch.cat(self._real), []
        return gather_rows(self, real)

    def on_validation_epoch_end(self) -> None:
        real = self._gathered_real()
        fake = self.generate(self._eval_noise())
        self.log("val/mmd", mmd2(fake, real), prog_bar=True, sync_dist=True)
        # The generator's size, for "quality against size" multi-objective sweeps.
        size = float(sum(p.numel() for p in self.generator.parameters()))
        self.log("size/generator", size, sync_dist=True)
        if not self.trainer.sanity_checking:
            self._save_grid(fake[:64])

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._real.append(batch[self.input_key].detach())

    def on_test_epoch_end(self) -> None:
        real = self._gathered_real()
        self.log("test/mmd", mmd2(self.generate(self._eval_noise()), real), sync_dist=True)

    def _eval_noise(self) -> torch.Tensor:
        return self.get_buffer("eval_noise")

    def _save_grid(self, images: torch.Tensor) -> None:
        grid = image_grid(images)
        if self.trainer.is_global_zero:
            folder = Path(self.trainer.default_root_dir) / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            save_png(grid, folder / f"epoch_{self.current_epoch:03d}.png")
        for logger in self.loggers:
            experiment: Any = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):
                experiment.add_image("samples", grid.unsqueeze(0), self.current_epoch)


def image_grid(images: torch.Tensor, columns: int = 8, pad: int = 1) -> torch.Tensor:
    """Grey images ``(n, 1, h, w)`` as one ``(rows*(h+pad), columns*(w+pad))`` image in [0, 1],
    each image scaled to its own range."""
    n, _, h, w = images.shape
    flat = images.detach().float().cpu().flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    scaled = ((flat - low) / (high - low).clamp_min(1e-6)).view(n, h, w)
    rows = -(-n // columns)
    grid = torch.ones(rows * (h + pad) + pad, columns * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = scaled[i]
    return grid


def save_png(grid: torch.Tensor, path: Path, scale: int = 4) -> None:
    """Write a ``(h, w)`` image in [0, 1] as an 8-bit grey PNG, each pixel ``scale`` x ``scale``."""
    from PIL import Image

    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = pixels.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    tmp = temporary_beside(path)
    Image.fromarray(pixels.numpy(), mode="L").save(tmp, format="PNG")
    tmp.replace(path)
