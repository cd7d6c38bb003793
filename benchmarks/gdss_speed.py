"""GDSS speed on this machine: sampling throughput vs steps for each sampler, training steps/s, peak memory.

    python benchmarks/gdss_speed.py [--steps 10 50 200] [--graphs 100] [--qm9-graphs 1000] [--root DIR]
                                    [--out benchmarks/results/gdss_speed]

Models are the presets' networks with untrained weights (speed does not depend on the weights): gdss-community_small
(20-node graphs) and gdss-qm9 (9 heavy atoms). Throughput = graphs / wall second for the whole ``pipe.sample`` call
(one batch), with the number of network calls per graph beside it. Training steps/s are the mean over timed steps
after two warm-up steps at the preset's batch size. Peak memory: the rise of the process's peak RSS while
sampling 1,000 QM9 graphs in one batch (``resource.getrusage``; measured in a fresh child process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _offline import link_raw  # noqa: E402
from _timing import rss_mb  # noqa: E402

CALLS = {"em": lambda s: s, "pc": lambda s: 2 * s, "s4": lambda s: s, "ode": lambda s: 2 * s - 1}


def pipeline(preset: str, root: Path):
    from graphdiff import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_preset(preset, root=root)
    pipe.denoiser.eval()
    return pipe


def throughput(pipe, n: int, steps_list, samplers=("em", "pc", "s4", "ode")) -> list[dict]:
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


def train_speed(pipe, n_steps: int = 10) -> dict:
    from _timing import time_train_steps

    from graphdiff.train import TrainConfig

    bs = TrainConfig.from_dict(pipe.config["preset"].get("train", {})).batch_size
    return time_train_steps(pipe, pipe._dataset.split("train"), bs, n_steps)


def peak_memory_child(root: str, n: int, steps: int) -> dict:
    """Resident memory while sampling ``n`` QM9 graphs in one batch: current RSS polled every 5 ms during the
    call, minus the RSS just before it (the process's lifetime peak would hide it behind dataset loading)."""
    import threading

    pipe = pipeline("gdss-qm9", Path(root))
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--graphs", type=int, default=100, help="community-small graphs per throughput run")
    p.add_argument("--qm9-graphs", type=int, default=1000)
    p.add_argument("--memory-steps", type=int, default=100, help="PC steps of the peak-memory run")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default="benchmarks/results/gdss_speed")
    p.add_argument("--_memory_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="gdss-speed-"))
    if args._memory_child:
        print(json.dumps(peak_memory_child(str(root), args.qm9_graphs, args.memory_steps)))
        return 0
    link_raw(root, ["qm9"])
    import torch

    res = {"command": "python " + " ".join(sys.argv), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "loadavg_start": os.getloadavg()}
    cs = pipeline("gdss-community_small", root)
    res["community_small"] = {"sampling": throughput(cs, args.graphs, args.steps), "training": train_speed(cs)}
    qm = pipeline("gdss-qm9", root)
    res["qm9"] = {"sampling": throughput(qm, args.qm9_graphs, args.steps[:2]), "training": train_speed(qm)}
    child = subprocess.run([sys.executable, __file__, "--_memory_child", "--root", str(root), "--qm9-graphs",
                            str(args.qm9_graphs), "--memory-steps", str(args.memory_steps)],
                           capture_output=True, text=True, check=True)
    res["qm9"]["peak_memory"] = json.loads(child.stdout.strip().splitlines()[-1])
    res["loadavg_end"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gdss_speed.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("loadavg_start", "loadavg_end")}))
    print(json.dumps(res["qm9"]["peak_memory"]))
    print(json.dumps({"community_small_train": res["community_small"]["training"],
                      "qm9_train": res["qm9"]["training"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
