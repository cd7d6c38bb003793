"""Epoch orders that put graphs of similar size in the same batch (size grouping).

A batch is padded to its largest graph, and most of our denoisers cost ``O(N^2)`` to ``O(N^3)`` per graph in the
padded size ``N``. On datasets whose sizes vary (ZINC250k: 6..38 atoms, SBM: 44..187 nodes) a random batch pays for
the largest graph of every batch. Grouping by size (as ``group_by_length`` in HF transformers or the bucketing
iterators of fairseq do) keeps the epoch random where it matters:

1. draw the epoch's random permutation (unchanged: with grouping off the order is exactly this);
2. cut it into windows of ``window`` batches and sort each window by size, largest first (ties keep their random
   order), so every batch holds graphs of neighbouring sizes from a random sample of the dataset;
3. shuffle the order of the full batches over the whole epoch, so sizes do not drift within an epoch.

Every graph still appears exactly once per epoch and the loss of every graph is unchanged (padding is masked);
what changes is which graphs share a batch (batch statistics are less mixed).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError


def graph_sizes(dataset) -> torch.Tensor:
    """Node count of every graph of a training set, as one int64 tensor (``dataset.num_nodes()``).

    Raises:
        ConfigError: the dataset cannot report its sizes.
    """
    fn = getattr(dataset, "num_nodes", None)
    if not callable(fn):
        raise ConfigError(f"train.group_by_size needs a dataset with num_nodes(), got {type(dataset).__name__}")
    sizes = torch.as_tensor(np.asarray(fn(), dtype=np.int64))
    if sizes.shape != (len(dataset),):
        raise ConfigError(f"train.group_by_size: num_nodes() returned shape {tuple(sizes.shape)} for "
                          f"{len(dataset)} graphs")
    return sizes


def group_by_size(order: torch.Tensor, sizes: torch.Tensor, batch_size: int, window: int,
                  generator: torch.Generator) -> torch.Tensor:
    """Reorder an epoch permutation so that each batch holds graphs of similar size (module docstring).

    Args:
        order: ``[G]`` the epoch's random permutation of graph positions.
        sizes: ``[G]`` node count of each graph (indexed by position).
        batch_size: graphs per micro-batch (the trainer takes ``order[m * bs:(m + 1) * bs]``).
        window: batches per sorted window (>= 1); larger windows give tighter batches and less mixing.
        generator: draws the shuffle of the batches (the trainer's per-epoch generator).

    Returns:
        ``[G]`` a permutation of ``order``: full batches in random order, the partial last batch (if any) last.
    """
    n = len(order)
    if window < 1 or batch_size < 1:
        raise ConfigError(f"group_by_size: window and batch_size must be >= 1, got {window}, {batch_size}")
    s = sizes[order]
    span = batch_size * window
    top = int(s.max()) + 1 if n else 1
    # one sort key: the window first, then the size, largest first; stable, so ties keep the random order
    key = (torch.arange(n) // span) * top + (top - 1 - s)
    order = order[torch.sort(key, stable=True).indices]
    full = n // batch_size
    perm = torch.randperm(full, generator=generator)
    head = order[: full * batch_size].reshape(full, batch_size)[perm].reshape(-1)
    return torch.cat([head, order[full * batch_size:]])


__all__ = ["group_by_size", "graph_sizes"]
