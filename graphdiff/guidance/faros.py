"""FAROS: fairer graphs from a pretrained model by switching a sensitive node attribute during generation.

Badaoui, Kharouiche, Mrabet, Malitesta & Malliaros, "FAROS: Fair Graph Generation via Attribute Switching
Mechanisms" (2025). A model trained on graphs whose edges depend on a sensitive node attribute reproduces that
dependence. FAROS does not retrain it: the reverse process runs unchanged up to a chosen step, there the sensitive
attribute of a chosen share of the nodes is switched, and the process runs on unchanged to the end. Switched
early, the model has time to rebuild the dependence around the new attributes; switched late, the structure is
mostly formed and the attributes stay decoupled from it. The paper picks the share and the step under accuracy and
fairness constraints; here both are arguments (``fraction``, ``switch_time`` / ``switch_step``) and
:mod:`graphdiff.metrics.fairness` scores the result, so a sweep (``graphdiff bench run fairness``) chooses them.

Here the sensitive attribute is the node category of the discrete processes (DiGress, DeFoG): ``groups`` names the
sensitive categories (default: all). At the switch, in each graph, ``round(fraction * m)`` of its ``m`` nodes whose
current category is a group are picked uniformly, and each picked node either takes a category drawn from the
``target`` group proportions (default uniform; with every node picked, the attributes at the switch are then
independent of everything else) or, with ``mapping`` (e.g. ``{"g0": "g1", "g1": "g0"}``), is mapped (for two
groups, flipping a random half makes the attribute independent of what it was: the default ``fraction`` with a
mapping is 1/2). ``switch_step = k`` switches the state entering reverse step ``k`` (0: the prior; ``steps``: the
final sample, a plain relabelling after generation).

The picks and draws come from their own per-sample streams, so the sampler's own noise is unchanged: with
``fraction = 0`` the samples are ``pipe.sample``'s with the same seed. Cost per sample: the unguided sampler's
network calls (counted), no reward call unless a reward scores the returned samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..progress import maybe
from ..samplers.noise import SampleNoise
from ..state import GraphState
from .search import GuidedSamples, counted_inference, score_states
from .steps import _transition, search_setup


def _category(value, names: tuple, what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 0 <= int(value) < len(names):
            raise ConfigError(f"faros: {what} {value!r} is not a node category index (0..{len(names) - 1})")
        return int(value)
    if value not in names:
        raise ConfigError(f"faros: {what} {value!r} is not a node category of the model; known: {list(names)}")
    return names.index(value)


def _groups(names: tuple, groups) -> list[int]:
    idx = list(range(len(names))) if groups is None else [_category(g, names, "group") for g in groups]
    if len(idx) < 2 or len(set(idx)) != len(idx):
        raise ConfigError(f"faros: groups must name two or more distinct node categories, got {groups!r} "
                          f"(the model's: {list(names)})")
    return idx


def _target(target, names: tuple, groups: list[int]) -> torch.Tensor:
    if target is None:
        return torch.full((len(groups),), 1.0 / len(groups), dtype=torch.float64)
    if isinstance(target, Mapping):
        at = {_category(k, names, "target group"): v for k, v in target.items()}
        if not set(at) <= set(groups):
            raise ConfigError(f"faros: target names a category outside groups: {target!r}")
        target = [at.get(g, 0.0) for g in groups]
    try:
        p = torch.as_tensor([float(v) for v in target], dtype=torch.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"faros: target must be proportions, one per group, got {target!r}") from None
    if p.shape != (len(groups),) or not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or not p.sum() > 0:
        raise ConfigError(f"faros: target must be {len(groups)} finite proportions >= 0 with a positive sum "
                          f"(one per group {[names[g] for g in groups]}), got {target!r}")
    return p / p.sum()


def _mapping(mapping, names: tuple, groups: list[int], states: int) -> torch.Tensor:
    table = torch.arange(states)
    if not isinstance(mapping, Mapping) or not mapping:
        raise ConfigError(f"faros: mapping must be a non-empty dict {{category: category}}, got {mapping!r}")
    for a, b in mapping.items():
        i, j = _category(a, names, "mapping key"), _category(b, names, "mapping value")
        if i not in groups or j not in groups:
            raise ConfigError(f"faros: mapping {a!r} -> {b!r} leaves the groups {[names[g] for g in groups]}")
        table[i] = j
    return table


def _switch_step(switch_time, switch_step, steps: int) -> int:
    if switch_step is not None and switch_time is not None:
        raise ConfigError("faros: give switch_time (a fraction of the trajectory) or switch_step, not both")
    if switch_step is not None:
        if isinstance(switch_step, bool) or not isinstance(switch_step, (int, np.integer)) \
                or not 0 <= switch_step <= steps:
            raise ConfigError(f"faros: switch_step must be an integer in 0..{steps} (steps), got {switch_step!r}")
        return int(switch_step)
    t = 0.5 if switch_time is None else switch_time
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
        raise ConfigError(f"faros: switch_time must be a fraction of the trajectory in [0, 1], got {t!r}")
    return int(round(float(t) * steps))


def switch_attributes(state: GraphState, noise: SampleNoise, groups: list[int], fraction: float,
                      target: torch.Tensor | None = None, table: torch.Tensor | None = None):
    """Switch the category of ``round(fraction * m)`` of the ``m`` group nodes of each graph of a one-hot process
    ``state``: to a draw from ``target`` (over ``groups``) or, with ``table``, to ``table[category]``.

    Returns:
        the new state, and per graph the nodes picked and the nodes whose category changed (``[B]`` long each).
    """
    x, mask = state.x, state.mask
    b, n, k = x.shape
    full = max(n, int(state.schema.max_nodes) if state.schema is not None else n)
    pick_u, draw_u = noise.rand(full)[:, :n], noise.rand(full)[:, :n]  # per-sample streams, padded to full size
    cur = x.argmax(-1)
    member = torch.zeros(k, dtype=torch.bool, device=x.device)
    member[torch.as_tensor(groups, device=x.device)] = True
    eligible = member[cur] & mask
    count = torch.round(fraction * eligible.sum(1).double()).long()
    score = torch.where(eligible, pick_u.to(x.device), torch.full_like(pick_u, math.inf, device=x.device))
    rank = score.argsort(dim=1, stable=True).argsort(dim=1)
    picked = eligible & (rank < count.unsqueeze(1))
    if table is not None:
        new = table.to(x.device)[cur]
    else:
        cdf = target.to(x.device).cumsum(0)
        j = torch.searchsorted(cdf, draw_u.to(x.device, torch.float64).contiguous() * cdf[-1], right=True)
        new = torch.as_tensor(groups, device=x.device)[j.clamp(max=len(groups) - 1)]
    new = torch.where(picked, new, cur)
    out = F.one_hot(new, k).to(x.dtype) * mask.unsqueeze(-1).to(x.dtype)
    switched = GraphState(x=out, e=state.e, mask=mask, y=state.y, schema=state.schema)
    return switched, picked.sum(1), (picked & (new != cur)).sum(1)


def faros(pipe, n: int, reward=None, *, switch_time: float | None = None, switch_step: int | None = None,
          fraction: float | None = None, groups=None, target=None, mapping=None, steps: int | None = None,
          seed: int | None = None, batch_size: int | None = None, progress: bool = False,
          **knobs) -> GuidedSamples:
    """Sample ``n`` graphs with the sensitive node categories switched once, at a chosen step (module docstring).

    Args:
        reward: optional, scores the returned samples; without one their ``rewards`` are minus each graph's dyadic
            demographic-parity gap over the groups (:func:`graphdiff.metrics.fairness.parity_gaps`; higher is
            fairer; ``nan`` for a graph with a single group).
        switch_time: where to switch, as a fraction of the trajectory in ``[0, 1]`` (step ``round(switch_time *
            steps)``); default 0.5. switch_step: the reverse step instead, ``0..steps``.
        fraction: share of each graph's group nodes switched, in ``[0, 1]``; default 1, or 1/2 with ``mapping``.
        groups: the sensitive node categories (names or indices of ``pipe.schema.node_categories``; default all).
        target: the proportions switched nodes are drawn from, one per group (a list, or a dict by category);
            default equal.
        mapping: ``{category: category}``: switched nodes are mapped instead of redrawn (``target`` unused).
        steps, seed, batch_size: as ``pipe.sample``.
        knobs: the sampler's own knobs (``time_distortion``, ``eta``, ``omega``, ``cond``, ``guidance``).
    """
    process, denoiser = pipe.process, pipe.denoiser
    if process.name not in ("defog", "digress"):
        raise ConfigError(f"faros switches node categories of the discrete processes ('defog', 'digress'), not "
                          f"{process.name!r}")
    steps, seed, knobs, times, _ = search_setup(pipe, n, steps, seed, knobs, "faros")
    k_switch = _switch_step(switch_time, switch_step, steps)
    names = tuple(pipe.schema.node_categories)
    group_idx = _groups(names, groups)
    table = None if mapping is None else _mapping(mapping, names, group_idx, process.node_states)
    if mapping is not None and target is not None:
        raise ConfigError("faros: give target (switched nodes redrawn) or mapping (switched nodes mapped), not both")
    probs = None if mapping is not None else _target(target, names, group_idx)
    fraction = (0.5 if mapping is not None else 1.0) if fraction is None else fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) <= 1.0:
        raise ConfigError(f"faros: fraction must be a share of the nodes in [0, 1], got {fraction!r}")
    device = pipe.device
    noise = SampleNoise.for_run(seed, 0, n, device)
    sizes = noise.node_counts(pipe.schema.node_count_probs())  # the prior's streams start after the size draw
    chunk = int(batch_size or pipe.config.sample.batch_size or 256)
    states, picked, changed = [], [], []
    with counted_inference(denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            sub = noise.subset(range(lo, hi))
            switch_noise = SampleNoise.for_run(seed + 5, lo, hi - lo, device)
            state = process.prior(sizes[lo:hi], generator=sub)
            log_px = None
            for k in maybe(range(steps + 1), progress, "faros"):
                if k == k_switch:
                    state, p, c = switch_attributes(state, switch_noise, group_idx, float(fraction), probs, table)
                    picked.append(p.cpu())
                    changed.append(c.cpu())
                if k == steps:
                    break
                (px, pe), log_px, _ = _transition(process, denoiser, state, k, times, steps, knobs)
                state = process.sample_state(px, pe, state.mask, sub, state.x.dtype)
                if k == steps - 1:
                    state = process.fill_masks(state, log_px)
            states.append(process.decode(state))
    out = GraphState.cat(states)
    if reward is not None:
        samples, values = score_states(pipe, out, reward)
    else:
        from ..metrics.fairness import parity_gaps

        samples = pipe._convert(out, "networkx")
        values = -parity_gaps(samples, "label", [names[g] for g in group_idx])
    cost = {"network_calls_per_sample": counter.graph_calls / n,
            "reward_calls_per_sample": 1.0 if reward is not None else 0.0,
            "switch_step": k_switch, "switch_time": k_switch / steps, "fraction": float(fraction),
            "switched_nodes_per_sample": float(torch.cat(picked).double().mean()),
            "changed_nodes_per_sample": float(torch.cat(changed).double().mean())}
    return GuidedSamples(state=out, rewards=values, cost=cost, samples=samples)


__all__ = ["faros", "switch_attributes"]
