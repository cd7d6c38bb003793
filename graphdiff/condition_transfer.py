"""Starting a condition value the base model never trained on from the trained value that best explains the data.

A multi-domain base model (the LGGM protocol) reads a one-hot domain condition with an input column for every domain
of its corpus. A domain held out of pre-training keeps the column's random initial weights, so fine-tuning on it
starts from a condition the network has never seen. :func:`transfer_conditions` scores
the base model's denoising loss on the fine-tuning graphs under every value of the group (the same noise and times
for every value, so the comparison is paired), and where another value explains the data better than the data's
own by more than the noise of that comparison (``z`` standard errors of the paired per-graph differences), copies
that value's input column into the data's value before training: the fine-tune starts from the closest trained
domain, and sampling with the data's own condition draws from it. On a value the base did train on, a similar
domain's column is at most a little better by chance, and the trained column stays.

Only networks that say where they read the condition (``condition_input()``: the linear layer and the column of its
first condition input) take part; the others are left as they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

__all__ = ["condition_losses", "transfer_conditions"]


def _groups(schema) -> list[tuple[str, list[str], int]]:
    """``(group, category names, first column in y)`` of each categorical condition group."""
    spec = schema.extra.get("conditions") if isinstance(schema.extra, dict) else None
    out, at = [], 0
    for group, names in ((spec or {}).get("categorical") or {}).items():
        out.append((group, list(names), at))
        at += len(names)
    return out


@torch.no_grad()
def condition_losses(process, denoiser, batches: list, lo: int, k: int, *, repeats: int = 2,
                     seed: int = 0) -> np.ndarray:
    """Per-graph losses of ``denoiser`` on ``batches`` with the one-hot block ``y[:, lo:lo + k]`` set to each of its
    ``k`` categories in turn: ``[k, repeats * graphs]``, column ``j`` the same graph, noise and time for every
    category (paired)."""
    was_training = denoiser.training
    denoiser.eval()
    drop = getattr(process, "cond_drop", None)
    if drop is not None:
        process.cond_drop = 0.0  # every graph conditioned
    try:
        rows = []
        for c in range(k):
            losses = []
            for b, batch in enumerate(batches):
                y = batch.y.clone()
                y[:, lo:lo + k] = 0.0
                y[:, lo + c] = 1.0
                state = dataclasses.replace(batch, y=y)
                for r in range(repeats):
                    g = torch.Generator(device=batch.device).manual_seed(seed + 1000 * b + r)
                    losses.append(process.loss(denoiser, state, generator=g).double().cpu().numpy())
            rows.append(np.concatenate(losses))
        return np.stack(rows)
    finally:
        if drop is not None:
            process.cond_drop = drop
        denoiser.train(was_training)


def transfer_conditions(process, denoiser, split, schema, *, graphs: int = 32, batch_size: int = 8,
                        repeats: int = 2, z: float = 3.0, seed: int = 0) -> list[dict]:
    """For each categorical condition group whose value is the same on every training graph of ``split`` (a
    fine-tune on one domain), copy the input column of the value with the lowest mean loss on the data (see
    :func:`condition_losses`, on up to ``graphs`` graphs) into the data's value, when the data's own value is worse
    by more than ``z`` standard errors of the paired per-graph differences: a never-trained column is far worse,
    while on a value the base trained on, a similar domain's column is at most a little better by chance. Returns
    one record per group examined (``group``, ``value``, mean ``losses`` by value, ``z``: the difference in
    standard errors, ``threshold``: the ``z`` argument, ``from``: the value copied, or ``None``)."""
    where = getattr(denoiser, "condition_input", None)
    groups = _groups(schema)
    if where is None or not groups or len(split) == 0:
        return []
    linear, first = where()
    idx = list(range(min(len(split), graphs)))
    batches = [split.batch(idx[i:i + batch_size]).to(linear.weight.device) for i in range(0, len(idx), batch_size)]
    if batches[0].y is None:
        return []
    records = []
    for group, names, lo in groups:
        used = torch.cat([b.y[:, lo:lo + len(names)].argmax(-1) for b in batches]).unique()
        if used.numel() != 1:
            continue  # several values in the data: each trains its own column
        own = int(used)
        per = condition_losses(process, denoiser, batches, lo, len(names), repeats=repeats, seed=seed)
        losses = per.mean(1)
        best = int(np.argmin(losses))
        diff = per[own] - per[best]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
        score = float(diff.mean() / se) if se > 0 else (np.inf if diff.mean() > 0 else 0.0)
        record = {"group": group, "value": names[own], "losses": dict(zip(names, np.round(losses, 5).tolist())),
                  "z": round(score, 2) if np.isfinite(score) else None, "threshold": z, "from": None}
        if best != own and score > z:
            with torch.no_grad():
                linear.weight[:, first + lo + own] = linear.weight[:, first + lo + best]
            record["from"] = names[best]
        records.append(record)
    return records
