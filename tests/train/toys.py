"""Tiny processes, denoisers and datasets for the trainer tests (also imported by the subprocess scripts)."""

from __future__ import annotations

import hashlib
import time

import torch
from torch import nn

from graphdiff import GraphState
from graphdiff.train import TrainConfig


def node_features(batch: GraphState) -> torch.Tensor:
    """Node features plus the scaled node degree, ``[B, N, Fx + 1]``."""
    degree = batch.e[..., 1:].sum(dim=(2, 3)).unsqueeze(-1)
    return torch.cat([batch.x, degree / 4.0], dim=-1)


def masked_graph_mean(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-graph mean of ``err [B, N, F]`` over real nodes, ``[B]`` (independent of padding)."""
    m = mask.unsqueeze(-1).to(err.dtype)
    return (err * m).sum(dim=(1, 2)) / (m.sum(dim=(1, 2)) * err.shape[-1]).clamp(min=1)


class NoiseProcess:
    """Denoising of node features: predict the Gaussian noise added to them (noise from ``generator``)."""

    name = "toy_noise"

    def loss(self, denoiser, batch: GraphState, *, generator=None) -> torch.Tensor:
        feats = node_features(batch)
        noise = torch.randn(feats.shape, generator=generator, device=feats.device, dtype=feats.dtype)
        pred = denoiser(feats + noise)
        return masked_graph_mean((pred - noise) ** 2, batch.mask)


class RegressionProcess:
    """No randomness at all: regress ``2 * features + 1`` from the features (a per-graph mean loss)."""

    name = "toy_regression"

    def loss(self, denoiser, batch: GraphState, *, generator=None) -> torch.Tensor:
        feats = node_features(batch)
        return masked_graph_mean((denoiser(feats) - (2 * feats + 1)) ** 2, batch.mask)


class NaNAfter:
    """Wraps a process; its loss turns NaN from the ``n``-th call on (calls counted from 1)."""

    def __init__(self, process, n: int):
        self.process, self.n, self.calls = process, n, 0
        self.name = process.name

    def loss(self, denoiser, batch, *, generator=None):
        self.calls += 1
        out = self.process.loss(denoiser, batch, generator=generator)
        return out * float("nan") if self.calls >= self.n else out


class SlowProcess(NoiseProcess):
    """A process whose loss takes ``delay`` seconds."""

    def __init__(self, delay: float):
        self.delay = delay

    def loss(self, denoiser, batch, *, generator=None):
        time.sleep(self.delay)
        return super().loss(denoiser, batch, generator=generator)


def make_denoiser(in_dim: int = 2, hidden: int = 32, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    """A node-wise MLP, initialised from ``seed`` without touching torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(in_dim, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, in_dim)
        )


def load_train_set(root):
    from graphdiff.data import load_dataset

    return load_dataset("synth_community_small", root=root, split="train", download=False)


class EmptyDataset:
    name = "nothing_here"

    def __len__(self):
        return 0

    def batch(self, indices):
        raise AssertionError("never called")


def resume_config(**overrides) -> TrainConfig:
    """The config of the exact-resume and kill tests: warm-up, exponential decay, clipping, EMA, dropout."""
    opts = dict(batch_size=8, epochs=3, warmup_steps=3, lr=3e-3, lr_schedule="exponential", lr_gamma=0.8,
                grad_clip=0.5, ema_decay=0.9, weight_decay=0.01, log_every=2, ckpt_every=4, device="cpu", seed=7)
    opts.update(overrides)
    return TrainConfig(**opts)


RUN_CONFIG = {"process": {"name": NoiseProcess.name}, "model": {"kind": "mlp", "hidden": 32}}


def params_digest(module: nn.Module) -> str:
    """sha256 over the exact bytes of every parameter and buffer."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
