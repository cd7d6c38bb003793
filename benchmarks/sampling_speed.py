"""GDSS sampling on this machine: throughput per sampler and step count, and the peak memory of a large batch.

    python benchmarks/sampling_speed.py [--samplers em pc s4 ode] [--steps 10 50 200] [--graphs 100]
                                        [--qm9-steps 10 50] [--qm9-graphs 1000] [--memory-steps 100]
                                        [--set KEY=VALUE ...] [--root DIR] [--raw-from DIR] [--out DIR]

Models are the presets' networks with untrained weights (speed does not depend on the weights):
gdss-community_small (20-node graphs; ``--graphs`` per run at each of ``--steps``) and gdss-qm9 (9 heavy atoms;
``--qm9-graphs`` at each of ``--qm9-steps``), with ``--set`` on both. Throughput = graphs / wall second for the
whole ``pipe.sample`` call (one batch), with the number of network calls per graph beside it. Peak memory: the
resident memory while sampling ``--qm9-graphs`` QM9 graphs in one batch with ``--memory-steps`` PC steps, polled
every 5 ms during the call, minus the resident memory just before it, measured in a fresh child process (the
process's lifetime peak would hide it behind dataset loading).

Training graphs/s are the ``speed`` suite's (``graphdiff bench run speed``; the committed GDSS training figures of
``benchmarks/results/history/gdss_speed/`` were at the preset's batch size: ``graphdiff bench run speed --only
gdss-qm9 --set train.batch_size=1024``). The committed sampling and memory figures are reproduced by
``python benchmarks/sampling_speed.py`` (then: ``gdss_speed.py --root DIR``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem
CALLS = {"em": lambda s: s, "pc": lambda s: 2 * s, "s4": lambda s: s, "ode": lambda s: 2 * s - 1}


def pipeline(preset: str, args, root: Path):
    from graphdiff import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_preset(preset, root=root, overrides=_common.user_overrides(args))
    pipe.denoiser.eval()
    return pipe


def throughput(pipe, n: int, steps_list, samplers) -> list[dict]:
    rows = []
    for sampler in samplers:
        for steps in steps_list:
            t = time.perf_counter()
            pipe.sample(n, steps=steps, sampler=sampler, seed=0, progress=False)
            dt = time.perf_counter() - t
            rows.append({"sampler": sampler, "steps": steps, "graphs": n, "seconds": round(dt, 3),
                         "graphs_per_s": round(n / dt, 2), "network_calls_per_graph": CALLS[sampler](steps)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def peak_memory(args, root: Path) -> dict:
    """Run in the child: the rise of the resident memory while sampling ``--qm9-graphs`` QM9 graphs in one batch."""
    from graphdiff.bench.timing import rss_mb

    n, steps = args.qm9_graphs, args.memory_steps
    pipe = pipeline("gdss-qm9", args, root)
    pipe.sample(2, steps=2, sampler="pc", seed=0, progress=False)  # warm-up: lazy initialisation
    before, peak, done = rss_mb(), [0.0], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    t = time.perf_counter()
    pipe.sample(n, steps=steps, sampler="pc", seed=0, progress=False, batch_size=n)
    dt = time.perf_counter() - t
    done.set()
    th.join()
    return {"graphs": n, "steps": steps, "sampler": "pc", "batch_size": n, "rss_before_mb": round(before, 1),
            "peak_rss_during_sampling_mb": round(peak[0], 1), "rise_mb": round(peak[0] - before, 1),
            "seconds": round(dt, 1), "method": "RSS from /proc/self/statm polled every 5 ms"}


def markdown(res: dict) -> str:
    lines = ["| preset | sampler | steps | graphs | seconds | graphs/s | network calls/graph |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for preset, rows in res["sampling"].items():
        lines += [f"| {preset} | {r['sampler']} | {r['steps']} | {r['graphs']} | {r['seconds']} | {r['graphs_per_s']} "
                  f"| {r['network_calls_per_graph']} |" for r in rows]
    m = res["peak_memory"]
    lines += ["", f"Peak memory, gdss-qm9, {m['graphs']} graphs in one batch, {m['steps']} PC steps: "
                  f"{m['rise_mb']} MB above the {m['rss_before_mb']} MB before the call ({m['seconds']} s)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--samplers", nargs="+", default=list(CALLS), choices=list(CALLS))
    p.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200], help="step counts on community-small")
    p.add_argument("--graphs", type=int, default=100, help="community-small graphs per throughput run")
    p.add_argument("--qm9-steps", type=int, nargs="+", default=[10, 50], help="step counts on QM9")
    p.add_argument("--qm9-graphs", type=int, default=1000, help="QM9 graphs per throughput and memory run")
    p.add_argument("--memory-steps", type=int, default=100, help="PC steps of the peak-memory run")
    p.add_argument("--_memory_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._memory_child:
        print(json.dumps(peak_memory(args, Path(args.root))))
        return 0
    started = _common.machine()
    root = _common.data_root(args, ["qm9"], NAME)
    res = {"sampling": {}}
    cs = pipeline("gdss-community_small", args, root)
    res["sampling"]["gdss-community_small"] = throughput(cs, args.graphs, args.steps, args.samplers)
    qm = pipeline("gdss-qm9", args, root)
    res["sampling"]["gdss-qm9"] = throughput(qm, args.qm9_graphs, args.qm9_steps, args.samplers)
    child = [sys.executable, __file__, "--_memory_child", "--root", str(root), "--qm9-graphs", str(args.qm9_graphs),
             "--memory-steps", str(args.memory_steps), *(f"--set={s}" for s in args.set)]
    out = subprocess.run(child, capture_output=True, text=True, check=True)
    res["peak_memory"] = json.loads(out.stdout.strip().splitlines()[-1])
    _common.write_results(args, NAME, res, markdown(res), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
