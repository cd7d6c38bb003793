"""Size-grouped batches (``train.group_by_size``) against random batches: padding and training graphs/s.

    python benchmarks/grouping.py [--presets pard-zinc250k defog-zinc250k] [--batch B] [--window 50]
                                  [--steps 10] [--cpu-model] [--root DIR] [--out benchmarks/results/grouping]

For each preset, the epoch-0 order the trainer draws (seed 0) is taken as it is and grouped by size
(:func:`graphdiff.train.group_by_size`). Over the whole epoch it reports the padded nodes per batch and the share of
dense slots that are padding; then it times ``--steps`` training steps on the first batches of each order, both from
the same initial weights, in one process, and prints the ratio of graphs/s (grouped / random).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _speed import preset_for_timing, speed_main, speed_parser  # noqa: E402
from _timing import time_train_steps  # noqa: E402


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

    from graphdiff.train import derive_seed, graph_sizes, group_by_size

    pipe, ds, bs, row = preset_for_timing(preset, args, root, cpu_batch_always=True)
    sizes = graph_sizes(ds)
    g = torch.Generator().manual_seed(derive_seed(0, "epoch", 0))  # the trainer's epoch-0 generator, seed 0
    plain = torch.randperm(len(ds), generator=g)
    grouped = group_by_size(plain, sizes, bs, args.window, g)
    row.update(window=args.window, epoch_random=epoch_padding(plain, sizes, bs),
               epoch_grouped=epoch_padding(grouped, sizes, bs))
    start = copy.deepcopy(pipe.denoiser.state_dict())
    for name, order in (("random", plain), ("grouped", grouped)):
        pipe.denoiser.load_state_dict(start)
        torch.manual_seed(0)
        row[f"timed_{name}"] = time_train_steps(pipe, ds, bs, args.steps, order=order, warmup=1)
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
    p = speed_parser(__doc__, ["pard-zinc250k", "defog-zinc250k"], "benchmarks/results/grouping",
                     batch_help="default: discrete.CPU_BATCH per dataset (64 for ZINC250k)")
    p.add_argument("--window", type=int, default=50)
    return speed_main(p, argv, run_preset, markdown, "grouping")


if __name__ == "__main__":
    sys.exit(main())
