"""Drawing the same samples of a run in batches split differently (the per-sample streams of ``SampleNoise``)."""

import torch

from graphdiff.samplers import SampleNoise


def draw_in_batches(draw, n_nodes: torch.Tensor, seed: int, sizes) -> list:
    """Samples ``0 .. len(n_nodes) - 1`` of the run seeded with ``seed``, drawn in consecutive batches of ``sizes``.

    Args:
        draw: ``draw(n_nodes, noise) -> GraphState`` for one batch.
        sizes: batch sizes summing to ``len(n_nodes)``.

    Returns:
        one compacted single-graph :class:`GraphState` per sample.
    """
    assert sum(sizes) == len(n_nodes)
    out, start = [], 0
    for size in sizes:
        state = draw(n_nodes[start:start + size], SampleNoise.for_run(seed, start, size))
        out += [state[i].compact() for i in range(size)]
        start += size
    return out


SPLITS = ([1, 1, 1, 1, 1], [2, 3], [4, 1])  # compared with the whole batch of five
