"""Size-grouped batches (``train.group_by_size``) against random batches: padding and training graphs/s.

    python benchmarks/grouping.py [--presets pard-zinc250k defog-zinc250k] [--steps 10] [--set KEY=VALUE ...]
                                  [--root DIR] [--raw-from DIR] [--out DIR]

The two settings compared are ``A`` (``train.group_by_size: 0``: the epoch's random order) and ``B`` (the same
order grouped by size with the window ``train.group_by_size`` of the preset, or of ``--set
train.group_by_size=W``; 50 where it is 0). For each preset, the epoch-0 order the trainer draws (seed 0) is taken
as it is and grouped by size (:func:`graphdiff.train.group_by_size`). Over the whole epoch it reports the padded
nodes per batch and the share of dense slots that are padding; then it times ``--steps`` training steps on the
first batches of each order, both from the same initial weights, in one process, and prints the ratio of graphs/s
(B / A). Each preset is built with the small CPU network and batch of ``graphdiff.bench.suites`` (64 for ZINC250k,
8 for SBM), then ``--set``.

The committed figures (``benchmarks/results/history/grouping/``) are reproduced by
``python benchmarks/grouping.py --presets pard-zinc250k defog-zinc250k defog-sbm`` (then: ``grouping.py ...
--steps 10 --cpu-model``).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import _common

A = {"train": {"group_by_size": 0}}
B = {"train": {"group_by_size": "the preset's window, 50 where it is 0"}}
NAME = Path(__file__).stem


def epoch_padding(order, sizes, bs: int) -> dict:
    """Padded nodes per batch and the share of node slots and of pair slots that are padding, over one epoch."""
    import torch

    full = len(order) // bs * bs
    batches = order[:full].reshape(-1, bs)
    n = sizes[batches].double()
    top = n.max(1).values
    slots = float((top * bs).sum())
    pairs = float((top**2 * bs).sum())
    return {"mean_padded_nodes": round(float(top.mean()), 2),
            "padding_share_nodes": round(1 - float(n.sum()) / slots, 3),
            "padding_share_pairs": round(1 - float((n**2).sum()) / pairs, 3),
            "batches": int(len(batches)), "mean_graph_nodes": round(float(sizes.double().mean()), 2),
            "largest_batch_nodes": int(torch.max(top))}


def run_preset(preset: str, args, root: Path) -> dict:
    import torch

    from graphdiff.bench.timing import time_train_steps
    from graphdiff.train import derive_seed, graph_sizes, group_by_size

    pipe, ds, bs, row = _common.timing_pipeline(preset, args, root)
    window = pipe.config.train.group_by_size or 50
    sizes = graph_sizes(ds)
    g = torch.Generator().manual_seed(derive_seed(0, "epoch", 0))  # the trainer's epoch-0 generator, seed 0
    plain = torch.randperm(len(ds), generator=g)
    grouped = group_by_size(plain, sizes, bs, window, g)
    row.update(window=window, epoch_random=epoch_padding(plain, sizes, bs),
               epoch_grouped=epoch_padding(grouped, sizes, bs))
    start = copy.deepcopy(pipe.denoiser.state_dict())
    for name, order in (("random", plain), ("grouped", grouped)):
        pipe.denoiser.load_state_dict(start)
        torch.manual_seed(0)
        row[f"timed_{name}"] = time_train_steps(pipe, ds, bs, args.steps, order=order, warmup=1,
                                                module=_common.loss_module(pipe))
        print(json.dumps({preset: row[f"timed_{name}"]}), flush=True)
    row["speedup_graphs_per_s"] = round(row["timed_grouped"]["graphs_per_s"] / row["timed_random"]["graphs_per_s"],
                                        2)
    return row


def markdown(rows) -> str:
    lines = ["| preset | batch | window | padded nodes/batch, random -> grouped (epoch) | padding share of pair "
             "slots | graphs/s random | graphs/s grouped | ratio | timed steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b, ta, tb = r["epoch_random"], r["epoch_grouped"], r["timed_random"], r["timed_grouped"]
        lines.append(f"| {r['preset']} | {r['batch_size']} | {r['window']} | {a['mean_padded_nodes']} -> "
                     f"{b['mean_padded_nodes']} (graphs: {a['mean_graph_nodes']}) | {a['padding_share_pairs']:.0%} -> "
                     f"{b['padding_share_pairs']:.0%} | {ta['graphs_per_s']} | {tb['graphs_per_s']} | "
                     f"**{r['speedup_graphs_per_s']}x** | {ta['timed_steps']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, presets=["pard-zinc250k", "defog-zinc250k"])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per order")
    args = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(args, {x.split("-", 1)[1] for x in args.presets}, NAME)
    rows = _common.each(args.presets, lambda preset: run_preset(preset, args, root))
    _common.write_results(args, NAME, {"A": A, "B": B, "rows": rows}, markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
