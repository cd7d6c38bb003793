"""Per-sample random streams, so that sample ``i`` is the same whatever the batch size or number of processes.

Sample ``i`` of a run with seed ``s`` draws everything (its node count, its prior, every step's noise) from its
own ``torch.Generator`` seeded from ``(s, i)``. Noise is drawn at the schema's full size and sliced to the
batch's padded size, so padding a batch differently does not change what a sample sees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` of a run seeded with ``seed`` (independent streams per index)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1, np.uint64)
    return int(state[0]) & 0x7FFFFFFFFFFFFFFF


class SampleNoise:
    """One CPU generator per sample; draws come back stacked on ``device``.

    Args:
        seeds: one integer seed per sample (see :func:`sample_seed`).
        device: where the stacked draws are placed.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.device = torch.device(device)

    @classmethod
    def for_run(cls, seed: int, start: int, count: int, device="cpu") -> "SampleNoise":
        """Streams for samples ``start .. start + count - 1`` of a run seeded with ``seed``."""
        return cls([sample_seed(seed, i) for i in range(start, start + count)], device)

    def __len__(self) -> int:
        return len(self.generators)

    def subset(self, index) -> "SampleNoise":
        """The streams of the samples at ``index`` (the same generator objects: their state carries on)."""
        out = object.__new__(SampleNoise)
        out.seeds = [self.seeds[int(i)] for i in index]
        out.generators = [self.generators[int(i)] for i in index]
        out.device = self.device
        return out

    def randn(self, *shape: int) -> Tensor:
        """``[B, *shape]`` standard normal draws, one generator per row."""
        out = torch.empty((len(self.generators), *shape))
        for row, g in zip(out.unbind(0), self.generators):  # in place: no per-row tensors to stack
            row.normal_(generator=g)
        return out.to(self.device)

    def rand(self, *shape: int) -> Tensor:
        """``[B, *shape]`` uniform draws in ``[0, 1)``, one generator per row."""
        out = torch.empty((len(self.generators), *shape))
        for row, g in zip(out.unbind(0), self.generators):
            row.uniform_(generator=g)
        return out.to(self.device)

    def node_counts(self, probs: Tensor) -> Tensor:
        """One graph size per sample from a distribution over sizes ``0..len(probs)-1``."""
        return torch.cat([torch.multinomial(probs, 1, generator=g) for g in self.generators])

    def randn_nodes(self, full: int, n: int, f: int) -> Tensor:
        """``[B, n, f]`` noise drawn at ``[full, f]`` per sample and sliced to the first ``n`` slots."""
        return self.randn(full, f)[:, :n]

    def randn_symmetric(self, full: int, n: int) -> Tensor:
        """``[B, n, n]`` symmetric noise with zero diagonal, drawn at ``[full, full]`` and sliced."""
        z = self.randn(full, full)[:, :n, :n].triu(1)
        return z + z.transpose(1, 2)


def symmetric_randn(shape: tuple[int, int, int], *, generator=None, device=None, dtype=None) -> Tensor:
    """``[B, N, N]`` symmetric standard-normal noise with zero diagonal from one shared generator."""
    gdev = generator.device if generator is not None else device
    z = torch.randn(shape, generator=generator, device=gdev, dtype=dtype).triu(1)
    z = z + z.transpose(1, 2)
    return z.to(device) if device is not None else z
