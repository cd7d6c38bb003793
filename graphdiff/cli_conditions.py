"""``graphdiff sample --cond NAME=VALUE --guidance W --nodes N``: what a conditioned model (the bundled
``lggm-base``'s domains, numeric conditions of a corpus) is asked for from the command line, and the count of valid
graphs printed for families with a validity rule."""

from __future__ import annotations

import math

from .errors import ConfigError

VALIDITY_CHECKED = 500  # graphs whose validity `graphdiff sample` checks (an SBM check fits a partition per graph)


def _value(raw: str):
    """A ``--cond`` value: a ``[a, b, ...]`` list (one value per sample) read as YAML, anything else kept as typed
    (``domain=yes`` is the category ``"yes"``; numeric conditions read numbers from the text)."""
    text = raw.strip()
    if text.startswith("["):
        from . import yamlio

        try:
            value = yamlio.load(text)
        except Exception:
            value = None
        if not isinstance(value, list):
            raise ConfigError(f"--cond value {raw!r}: expected one value or a list such as [tree, grid]")
        return [v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v) for v in value]
    if not text:
        raise ConfigError("--cond NAME=: the value is empty")
    return text


def sample_conditions(items) -> dict | None:
    """``--cond NAME=VALUE`` items as the mapping ``pipe.sample(cond=...)`` takes (``{"domain": "planar"}``); the
    pipeline checks names and values against the model's conditions."""
    out: dict = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--cond {item!r}: expected NAME=VALUE, e.g. domain=planar")
        if "." in key:
            raise ConfigError(f"--cond {item!r}: condition names have no dots (e.g. domain=planar)")
        if key in out:
            raise ConfigError(f"--cond {key} given twice")
        out[key] = _value(raw)
    return out or None


def node_counts(text: str | None, n: int, max_nodes: int) -> int | list[int] | None:
    """``--nodes 64`` (every sample) or ``--nodes 20,30,40`` (one size per sample), checked against ``-n`` and the
    model's largest graph."""
    if text is None:
        return None
    try:
        sizes = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ConfigError(f"--nodes {text!r}: expected an integer or a comma-separated list of integers") from None
    if len(sizes) not in (1, n):
        raise ConfigError(f"--nodes {text!r}: {len(sizes)} sizes for -n {n} samples (give one, or one per sample)")
    bad = [v for v in sizes if not 1 <= v <= max_nodes]
    if bad:
        raise ConfigError(f"--nodes {bad[0]}: this model makes graphs of 1 to {max_nodes} nodes")
    return sizes[0] if len(sizes) == 1 else sizes


def condition_kwargs(args, kw: dict, n: int, max_nodes: int) -> dict:
    """``cond``, ``guidance`` and ``n_nodes`` for ``pipe.sample`` from ``--cond``, ``--guidance`` and ``--nodes``
    (one-line errors naming the flag)."""
    cond = sample_conditions(args.cond)
    if args.guide is not None and (cond or args.guidance is not None):
        raise ConfigError(f"--guide {args.guide} does not take --cond or --guidance yet; sample the condition "
                          "without --guide, or steer the unconditioned samples")
    if args.guidance is not None:
        if not math.isfinite(args.guidance):
            raise ConfigError(f"--guidance must be a finite number, got {args.guidance}")
        if not cond:
            raise ConfigError("--guidance needs --cond: classifier-free guidance mixes the conditioned and the "
                              "unconditional predictions")
    if cond and "n_nodes" in cond and args.nodes is not None:
        raise ConfigError("--cond n_nodes=... and --nodes both give the size; give one of them")
    out = {"cond": cond, "guidance": args.guidance, "n_nodes": node_counts(args.nodes, n, max_nodes)}
    out = {k: v for k, v in out.items() if v is not None}
    for key in out:
        if key in kw:
            raise ConfigError(f"--set {key}=... and --{'nodes' if key == 'n_nodes' else key}: give it once")
    return out


def graph_validity(state, pipe, cond) -> str:
    """``"; k of n are valid planar graphs"`` when the family asked for (``--cond domain=D``, else the model's
    dataset) has a validity rule (:func:`graphdiff.metrics.vun.validity_for_dataset`), counted on at most
    :data:`VALIDITY_CHECKED` graphs; ``""`` otherwise (also when each sample asked for its own domain)."""
    from .convert.networkx import to_networkx
    from .metrics.vun import validity_for_dataset

    if isinstance(cond, dict) and "domain" in cond:
        family = cond["domain"] if isinstance(cond["domain"], str) else None
    else:
        family = pipe.config.dataset
    valid = validity_for_dataset(family) if isinstance(family, str) else None
    if valid is None:
        return ""
    part = state if len(state) <= VALIDITY_CHECKED else state[:VALIDITY_CHECKED]
    k = sum(bool(valid(g)) for g in to_networkx(part, pipe.schema))
    return f"; {k} of {'the first ' if len(part) < len(state) else ''}{len(part)} are valid {family} graphs"
