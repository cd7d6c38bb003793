"""Starting a condition value the base model never trained on from the trained value that best explains the data.

A multi-domain base model (the LGGM protocol) reads a one-hot domain condition with an input column for every domain
of its corpus. A domain held out of pre-training keeps the column's random initial weights, so fine-tuning on it
starts from a condition the network has never seen (on SBM, a base drew much sparser graphs under that column than
under a trained domain's, and a few hundred fine-tuning steps did not undo it). :func:`transfer_conditions` scores
the base model's denoising loss on the fine-tuning graphs under every value of the group (the same noise and times
for every value, so the comparison is paired), and where another value explains the data better than the data's
own (by more than ``margin``, relative; none by default, since the option is for a value the base never trained
on), copies that value's input column into the data's value before training: the fine-tune starts from the closest
trained domain, and sampling with the data's own condition draws from it. On a value the base did train on, the
loss estimate's noise can favour a similar domain; a margin (0.1, say) keeps the trained column there.

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
    """Mean per-graph loss of ``denoiser`` on ``batches`` with the one-hot block ``y[:, lo:lo + k]`` set to each of
    its ``k`` categories in turn (``[k]``); every category sees the same noise and times."""
    was_training = denoiser.training
    denoiser.eval()
    drop = getattr(process, "cond_drop", None)
    if drop is not None:
        process.cond_drop = 0.0  # every graph conditioned
    try:
        totals = np.zeros(k)
        for c in range(k):
            for b, batch in enumerate(batches):
                y = batch.y.clone()
                y[:, lo:lo + k] = 0.0
                y[:, lo + c] = 1.0
                state = dataclasses.replace(batch, y=y)
                for r in range(repeats):
                    g = torch.Generator(device=batch.device).manual_seed(seed + 1000 * b + r)
                    totals[c] += float(process.loss(denoiser, state, generator=g).sum())
        return totals / (repeats * sum(bt.batch_size for bt in batches))
    finally:
        if drop is not None:
            process.cond_drop = drop
        denoiser.train(was_training)


def transfer_conditions(process, denoiser, split, schema, *, graphs: int = 32, batch_size: int = 8,
                        repeats: int = 2, margin: float = 0.0, seed: int = 0) -> list[dict]:
    """For each categorical condition group whose value is the same on every training graph of ``split`` (a
    fine-tune on one domain), copy the input column of the value with the lowest loss on the data (see
    :func:`condition_losses`, on up to ``graphs`` graphs) into the data's value, when the data's value has a loss
    more than ``margin`` (relative) above it. Returns one record per group examined (``group``, ``value``,
    ``losses`` by value, ``from``: the value copied, or ``None``)."""
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
        losses = condition_losses(process, denoiser, batches, lo, len(names), repeats=repeats, seed=seed)
        best = int(np.argmin(losses))
        record = {"group": group, "value": names[own], "losses": dict(zip(names, np.round(losses, 5).tolist())),
                  "from": None}
        if best != own and losses[own] > (1.0 + margin) * losses[best]:
            with torch.no_grad():
                linear.weight[:, first + lo + own] = linear.weight[:, first + lo + best]
            record["from"] = names[best]
        records.append(record)
    return records
