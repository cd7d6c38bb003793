"""Speed of the extra structural features (graphdiff.nn.features) on SBM-sized graphs.

    python benchmarks/extra_features_speed.py [--batch 32] [--repeats 7] [--warmup 2] [--spectral-k 5]
                                              [--rrwp-steps 8] [--device cpu] [--threads 0] [--root DIR]
                                              [--out DIR]

Graphs: the first ``--batch`` graphs of ``synth_sbm`` (SPECTRE's SBM definition, generated offline by
``graphdiff.data.load_dataset``; 2-5 blocks of 20-40 nodes), as one dense batch padded to its largest graph. Each
feature is called ``--warmup`` times, then timed ``--repeats`` times; the report is the median batch time divided
by the batch size (ms per graph), with the settings, thread count and load average beside the numbers. Results go
to ``<out>/extra_features_speed.json`` and ``.md`` (``<out>`` default
``benchmarks/results/extra_features_speed-<device>``). No preset is built, so there is no ``--set``.

The committed figures (``benchmarks/results/history/extra_features/``) are reproduced by
``python benchmarks/extra_features_speed.py --repeats 5 --warmup 2 --threads 1`` (the same command as then).
"""

from __future__ import annotations

import sys
import json
import os
import statistics
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem


def sbm_batch(root: Path, batch: int, device: str):
    from graphdiff.data import load_dataset

    ds = load_dataset("synth_sbm", root=root)
    state = ds.batch(list(range(min(batch, len(ds))))).to(device)
    return state.adjacency().float(), state.mask


def timed(fn, warmup: int, repeats: int, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, raw_from=False, overrides=False)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--spectral-k", type=int, default=5)
    p.add_argument("--rrwp-steps", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)

    import torch

    from graphdiff.nn.features import ExtraFeatures, cycle_features, rrwp_features, spectral_features

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = _common.machine()
    root = _common.data_root(args, [], NAME)
    adj, mask = sbm_batch(root, args.batch, args.device)
    b, n = mask.shape
    sizes = mask.sum(1)
    sync = (lambda: torch.cuda.synchronize()) if adj.device.type == "cuda" else (lambda: None)
    k, steps = args.spectral_k, args.rrwp_steps
    cases = {
        "cycles": lambda: cycle_features(adj, mask),
        f"spectral(k={k})": lambda: spectral_features(adj, mask, k),
        f"rrwp(steps={steps})": lambda: rrwp_features(adj, mask, steps),
        "cycles+spectral (transformer default)": lambda: ExtraFeatures(("cycles", "spectral"), k, steps)(adj, mask),
        "cycles+spectral+rrwp": lambda: ExtraFeatures(("cycles", "spectral", "rrwp"), k, steps)(adj, mask),
    }
    settings = {
        "dataset": "synth_sbm (first graphs, one batch)", "batch": b, "padded_nodes": n,
        "real_nodes_min": int(sizes.min()), "real_nodes_max": int(sizes.max()),
        "real_nodes_mean": round(float(sizes.float().mean()), 1), "dtype_in": str(adj.dtype).replace("torch.", ""),
        "internal_dtype": "cycles: float32 matmuls (exact here) + float64; eigh: float64; rrwp: input dtype",
        "device": str(adj.device),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "warmup": args.warmup, "repeats": args.repeats, "loadavg_start": os.getloadavg(),
    }
    print(json.dumps(settings), flush=True)
    rows = []
    for name, fn in cases.items():
        ts = timed(fn, args.warmup, args.repeats, sync)
        med = statistics.median(ts)
        row = {"feature": name, "ms_per_graph": round(1000 * med / b, 3), "ms_per_batch_median": round(1000 * med, 2),
               "ms_per_batch_min": round(1000 * min(ts), 2), "ms_per_batch_max": round(1000 * max(ts), 2)}
        rows.append(row)
        print(f"{name:40s} {row['ms_per_graph']:9.3f} ms/graph  (batch {b}, N={n}, median of {args.repeats})",
              flush=True)
    settings["loadavg_end"] = os.getloadavg()
    md = ["| feature | ms per graph | ms per batch, median (min-max) |", "|---|---:|---|"]
    md += [f"| {r['feature']} | {r['ms_per_graph']} | {r['ms_per_batch_median']} ({r['ms_per_batch_min']}-"
           f"{r['ms_per_batch_max']}) |" for r in rows]
    md += ["", f"Batch of {b} synth_sbm graphs padded to {n} nodes ({settings['real_nodes_min']}-"
               f"{settings['real_nodes_max']} real), median of {args.repeats} after {args.warmup} warm-up calls, "
               f"{settings['torch_threads']} torch threads, device {settings['device']}."]
    _common.write_results(args, NAME, {"settings": settings, "results": rows}, "\n".join(md) + "\n",
                          started=started, device="cuda" if adj.device.type == "cuda" else "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
