"""Test helpers: permutation equivariance, padding isolation and E(3) equivariance of functions on
:class:`GraphState` batches.

The helpers call ``fn(state)`` (or ``fn(state, t)`` when ``t`` is given) and expect a :class:`GraphState` back.
Outputs are compared only where they mean something: ``x`` at real nodes, ``e`` at pairs of real nodes (diagonal
included) and, when both outputs have coordinates, ``pos`` at real nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from ..state import GraphState

__all__ = ["assert_permutation_equivariant", "assert_mask_isolated", "assert_e3_equivariant", "random_orthogonal",
           "real_node_permutation", "slot_permutation"]


def _call(fn: Callable, state: GraphState, t: Tensor | None) -> GraphState:
    out = fn(state) if t is None else fn(state, t)
    if not isinstance(out, GraphState):
        raise TypeError(f"fn must return a GraphState, got {type(out).__name__}")
    return out


def real_node_permutation(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``[B, N]`` long: per graph, a random permutation of the real slots among themselves; padded slots stay."""
    b, n = mask.shape
    perm = torch.arange(n).repeat(b, 1)
    cpu_mask = mask.detach().cpu().bool()
    for i in range(b):
        real = cpu_mask[i].nonzero().squeeze(-1)
        perm[i, real] = real[torch.randperm(real.numel(), generator=generator)]
    return perm.to(mask.device)


def slot_permutation(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``[B, N]`` long: per graph, a random permutation of all slots (real and padded ones mix)."""
    b, n = mask.shape
    perm = torch.stack([torch.randperm(n, generator=generator) for _ in range(b)]) if b else torch.zeros(0, n)
    return perm.long().to(mask.device)


def _deviation(a: Tensor, b: Tensor, where: Tensor) -> float:
    if a.shape != b.shape:
        raise AssertionError(f"output shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if not bool(where.any()):
        return 0.0
    d = (a.detach() - b.detach()).abs()[where]
    if bool(torch.isnan(d).any()):
        return float("nan")
    return float(d.max())


def _compare(got: GraphState, want: GraphState, mask: Tensor, atol: float, what: str,
             pos_atol: float | None = None) -> None:
    nodes = mask
    pairs = mask.unsqueeze(2) & mask.unsqueeze(1)
    dx = _deviation(got.x, want.x, nodes)
    de = _deviation(got.e, want.e, pairs)
    pos_atol = atol if pos_atol is None else pos_atol
    if got.pos is not None and want.pos is not None:
        dp = _deviation(got.pos, want.pos, nodes)
        if not (dx <= atol and de <= atol and dp <= pos_atol):
            raise AssertionError(f"{what}: max deviation x {dx:.3g}, e {de:.3g} (atol {atol:.3g}), pos {dp:.3g} "
                                 f"(atol {pos_atol:.3g})")
    elif not (dx <= atol and de <= atol):
        raise AssertionError(f"{what}: max deviation x {dx:.3g}, e {de:.3g} (atol {atol:.3g})")


def assert_permutation_equivariant(
    fn: Callable[..., GraphState], state: GraphState, *, t: Tensor | None = None, atol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> None:
    """Check ``fn(state.permute(p)) == fn(state).permute(p)`` on real nodes and real pairs.

    Two permutations are tried, drawn per graph: one that moves only real nodes among the real slots, and one
    that shuffles all slots, padded ones included.

    Args:
        fn: ``GraphState -> GraphState`` (or ``(GraphState, t) -> GraphState`` when ``t`` is given).
        state: the batch to test on.
        t: ``[B]`` times passed through unchanged (times belong to graphs, not nodes).
        atol: largest allowed absolute deviation.
        generator: CPU random generator for the permutations.

    Raises:
        AssertionError: naming the permutation kind and the largest deviation on ``x`` and ``e``.
    """
    base = _call(fn, state, t)
    for kind, perm in (
        ("real-node permutation", real_node_permutation(state.mask, generator)),
        ("all-slot permutation", slot_permutation(state.mask, generator)),
    ):
        moved = state.permute(perm)
        _compare(_call(fn, moved, t), base.permute(perm), moved.mask, atol, f"not equivariant under a {kind}")


def assert_mask_isolated(
    fn: Callable[..., GraphState], state: GraphState, *, t: Tensor | None = None, atol: float = 1e-5,
    generator: torch.Generator | None = None, scale: float = 10.0,
) -> None:
    """Check that values at padded slots do not reach real ones.

    ``x`` (and ``pos`` when present) at padded slots and every ``e`` entry touching a padded slot are replaced by
    random values (normal, times ``scale``); ``fn``'s outputs at real nodes and real pairs must stay the same.

    Args:
        fn: ``GraphState -> GraphState`` (or ``(GraphState, t) -> GraphState`` when ``t`` is given).
        state: the batch to test on; it must have at least one padded slot.
        t: ``[B]`` times passed through unchanged.
        atol: largest allowed absolute deviation.
        generator: CPU random generator for the replacement values.
        scale: size of the replacement values.

    Raises:
        ValueError: ``state`` has no padded slot (the check would be empty).
        AssertionError: with the largest deviation on ``x`` and ``e``.
    """
    pad = ~state.mask
    if not bool(pad.any()):
        raise ValueError("assert_mask_isolated needs a state with at least one padded slot")
    touches = (pad.unsqueeze(2) | pad.unsqueeze(1)).unsqueeze(-1)
    noise_x = torch.randn(state.x.shape, generator=generator, dtype=state.x.dtype).to(state.x.device) * scale
    noise_e = torch.randn(state.e.shape, generator=generator, dtype=state.e.dtype).to(state.e.device) * scale
    pos = state.pos
    if pos is not None:
        noise_p = torch.randn(pos.shape, generator=generator, dtype=pos.dtype).to(pos.device) * scale
        pos = torch.where(pad.unsqueeze(-1), noise_p, pos)
    dirty = replace(
        state,
        x=torch.where(pad.unsqueeze(-1), noise_x, state.x),
        e=torch.where(touches, noise_e, state.e),
        pos=pos,
    )
    _compare(_call(fn, dirty, t), _call(fn, state, t), state.mask, atol, "padded slots leak into real ones")


def random_orthogonal(reflect: bool, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> Tensor:
    """A random ``3 x 3`` orthogonal matrix (Haar-distributed), a proper rotation (det +1) or, with ``reflect``, an
    improper one (det -1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if (torch.det(q) < 0) != reflect:
        q = q.clone()
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def assert_e3_equivariant(
    fn: Callable[..., GraphState], state: GraphState, *, t: Tensor | None = None, atol: float = 1e-5,
    pos_atol: float | None = None, generator: torch.Generator | None = None, trials: int = 2,
    shift_scale: float = 10.0,
) -> dict[str, float]:
    """Check E(3) equivariance: ``x`` and ``e`` outputs invariant, ``pos`` equivariant, ``pos(R p + s) = R pos(p) + s``.

    Each trial draws a rotation (det +1) and a reflection (det -1), each with a random translation per graph (normal,
    times ``shift_scale``), applied to ``pos`` at real nodes (padded slots keep theirs).

    Args:
        fn: ``GraphState -> GraphState`` (or ``(GraphState, t) -> GraphState`` when ``t`` is given); its output must
            have ``pos``.
        state: the batch to test on; it must have ``pos``.
        t: ``[B]`` times passed through unchanged.
        atol: largest allowed absolute deviation of ``x`` and ``e``.
        pos_atol: largest allowed absolute deviation of ``pos`` (default ``atol``).
        generator: CPU random generator for the transformations.
        trials: rotation/reflection pairs to try.
        shift_scale: size of the translations.

    Returns:
        The largest deviations seen, ``{"x": ..., "e": ..., "pos": ...}``.

    Raises:
        ValueError: ``state`` has no ``pos``.
        AssertionError: naming the transformation and the largest deviations.
    """
    if state.pos is None:
        raise ValueError("assert_e3_equivariant needs a state with pos")
    base = _call(fn, state, t)
    if base.pos is None:
        raise AssertionError("fn returned no pos")
    mask = state.mask
    pairs = mask.unsqueeze(2) & mask.unsqueeze(1)
    worst = {"x": 0.0, "e": 0.0, "pos": 0.0}
    for trial in range(trials):
        for reflect in (False, True):
            rot = random_orthogonal(reflect, generator, state.pos.dtype).to(state.pos.device)
            shift = torch.randn(state.batch_size, 1, 3, generator=generator, dtype=state.pos.dtype)
            shift = shift.to(state.pos.device) * shift_scale
            moved = replace(state, pos=torch.where(mask.unsqueeze(-1), state.pos @ rot.T + shift, state.pos))
            got = _call(fn, moved, t)
            want_pos = base.pos @ rot.to(base.pos.dtype).T + shift.to(base.pos.dtype)
            dev = {"x": _deviation(got.x, base.x, mask), "e": _deviation(got.e, base.e, pairs),
                   "pos": _deviation(got.pos, want_pos, mask)}
            worst = {k: max(worst[k], v) for k, v in dev.items()}
            limit = {"x": atol, "e": atol, "pos": atol if pos_atol is None else pos_atol}
            if not all(dev[k] <= limit[k] for k in dev):
                kind = "reflection (det -1)" if reflect else "rotation (det +1)"
                raise AssertionError(
                    f"not E(3) equivariant under a {kind} and translation (trial {trial}): max deviation "
                    + ", ".join(f"{k} {dev[k]:.3g} (atol {limit[k]:.3g})" for k in dev)
                )
    return worst
