"""GDSS sampling throughput against the GDSS authors' own sampler, on their QM9 checkpoint, in one run.

    python benchmarks/gdss_authors_speed.py --gdss-repo GDSS [--graphs 1000] [--steps 100] [--threads 1]
                                            [--repeats 2] [--no-compile] [--processes K] [--batch-size B]
                                            [--root DIR] [--raw-from DIR] [--out DIR]

``--gdss-repo`` is a checkout of github.com/harryjo97/GDSS (its ``models/``, ``utils/``, ``sde.py``, ``solver.py``,
``losses.py`` and ``checkpoints/QM9/gdss_qm9.pth`` are used, unchanged; nothing of it is copied here). Both sides
sample ``--graphs`` QM9 graphs in one batch with the paper's predictor-corrector settings (reverse-diffusion
predictor, one Langevin corrector step, snr 0.2, scale_eps 0.7, eps 1e-4) at ``--steps`` steps, i.e. the same
network calls per graph (two evaluations of the x and adjacency networks per step), on ``--threads`` torch threads:

- ``authors``: their ``solver.get_pc_sampler`` on their ``ScoreNetworkX`` / ``ScoreNetworkA`` with the
  checkpoint's weights, the node counts of our run as their ``init_flags``;
- ``authors, subnormal weights flushed``: the same, with the checkpoint's subnormal weights (about 2,000 below
  float32's smallest normal) set to zero, as graphdiff's loader does
  (:func:`graphdiff.train.checkpoint.flush_subnormal_`): what that step alone is worth on their code;
- ``graphdiff``: ``pipe.sample`` on the checkpoint converted by ``graphdiff import-checkpoint --format gdss``;
- ``graphdiff compiled``: the same after ``pipe.compile(dynamic=False)`` (static kernels for the one batch shape;
  compiled once on a two-step warm-up call, not timed), whose samples are compared with the eager ones (share of
  identical decoded graphs).

``--batch-size B`` adds rows for both sides sampling in consecutive batches of ``B`` graphs (the authors' sampler
on flushed weights on consecutive shares of the node counts; graphdiff eager and compiled with ``batch_size=B``,
whose compiled samples are compared with the one-batch eager ones): on a CPU a batch whose pair tensors stay in
cache runs faster, on either side.

``--processes K`` adds rows for K one-thread processes started together, each sampling a contiguous share of the
graphs (what ``graphdiff sample --workers K`` runs): the authors' sampler as shipped and flushed (each process
their sampler on its share of the node counts), and graphdiff compiled (its shards concatenated are compared with
its one-process eager samples). On K cores, compare them with the one-process rows at ``--threads K``.

The sides run alternately ``--repeats`` times; the table keeps each side's fastest run and its ratio to the
authors' in the same run. Both sides load the same checkpoint tensors.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem
SETTINGS = {"predictor": "Reverse", "corrector": "Langevin", "snr": 0.2, "scale_eps": 0.7, "n_steps": 1,
            "eps": 1e-4}


def authors_side(repo: Path, ck: dict, steps: int, flush: bool = False):
    """The authors' networks with the checkpoint's weights (``flush``: with its subnormal weights set to zero, as
    graphdiff's loader does) and a function running their PC sampler."""
    import torch

    from graphdiff.data.safe_pickle import plain

    sys.path.insert(0, str(repo))
    from models.ScoreNetwork_A import ScoreNetworkA  # noqa: E402  (the authors' modules)
    from models.ScoreNetwork_X import ScoreNetworkX
    from sde import VESDE, VPSDE, subVPSDE
    from solver import get_pc_sampler

    def net(params, cls, state):
        p = {k: v for k, v in plain(params).items() if k != "model_type"}
        m = cls(**p)
        m.load_state_dict(state)
        if flush:
            from graphdiff.train.checkpoint import flush_subnormal_

            flush_subnormal_(m)
        return m.eval()

    mx = net(ck["params_x"], ScoreNetworkX, ck["x_state_dict"])
    ma = net(ck["params_adj"], ScoreNetworkA, ck["adj_state_dict"])
    kinds = {"VP": VPSDE, "VE": VESDE, "subVP": subVPSDE}

    def sde(c):
        cls = kinds[c["type"]]
        if cls is VESDE:
            return VESDE(sigma_min=c["beta_min"], sigma_max=c["beta_max"], N=steps)
        return cls(beta_min=c["beta_min"], beta_max=c["beta_max"], N=steps)

    cfg = plain(ck["model_config"])
    sde_x, sde_adj = sde(cfg["sde"]["x"]), sde(cfg["sde"]["adj"])
    feat, nmax = int(cfg["data"]["max_feat_num"]), int(cfg["data"]["max_node_num"])

    def run(sizes):
        flags = (torch.arange(nmax).unsqueeze(0) < sizes.unsqueeze(1)).float()
        n = len(sizes)
        s = SETTINGS
        sampler = get_pc_sampler(sde_x, sde_adj, (n, nmax, feat), (n, nmax, nmax), predictor=s["predictor"],
                                 corrector=s["corrector"], snr=s["snr"], scale_eps=s["scale_eps"],
                                 n_steps=s["n_steps"], probability_flow=False, continuous=True, denoise=True,
                                 eps=s["eps"], device="cpu")
        return sampler(mx, ma, flags)

    return mx, ma, run


def _authors_worker(index, count, payload):
    """One worker of a sharded authors' row: their sampler on this worker's contiguous share of the graphs."""
    from graphdiff.data.safe_pickle import safe_load_torch
    from graphdiff.pipeline import shard_range

    repo, src, steps, sizes, flush = payload
    _, _, run = authors_side(Path(repo), safe_load_torch(src), steps, flush=flush)
    lo, hi = shard_range(len(sizes), index, count)
    run(sizes[lo:lo + 4])  # warm-up (first-call allocations), untimed

    def timed():
        run(sizes[lo:hi])  # the samples stay in the worker: only the time is compared

    return timed


def _graphdiff_worker(index, count, payload):
    """One worker of the sharded graphdiff row: the converted model, compiled, sampling its shard."""
    from graphdiff import GraphDiffusionPipeline

    model, n, steps, knobs = payload
    pipe = GraphDiffusionPipeline.from_pretrained(model).compile(dynamic=False)
    shard = (index, count)
    pipe.sample(n, steps=2, sampler="pc", seed=0, output="state", progress=False, shard=shard, **knobs)  # compiles
    return lambda: pipe.sample(n, steps=steps, sampler="pc", seed=0, output="state", progress=False, shard=shard,
                               **knobs)


def _same_graphs(parts, whole) -> float:
    """Share of graphs of ``whole`` (one run) equal to the shards' (each padded to its own largest graph)."""
    same, i = 0, 0
    for part in parts:
        for j in range(len(part)):
            m = int(part.mask[j].sum())
            same += int(int(whole.mask[i].sum()) == m and bool((part.x[j, :m] == whole.x[i, :m]).all())
                        and bool((part.e[j, :m, :m] == whole.e[i, :m, :m]).all()))
            i += 1
    return same / len(whole)


def main() -> None:
    p = _common.parser(__doc__, NAME, overrides=False)
    p.add_argument("--gdss-repo", required=True, help="a checkout of github.com/harryjo97/GDSS")
    p.add_argument("--graphs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="skip the compiled row")
    p.add_argument("--batch-size", type=int, default=None,
                   help="also time both sides in consecutive batches of B graphs (the authors' sampler on flushed "
                        "weights, graphdiff eager and compiled), same samples")
    p.add_argument("--processes", type=int, default=1,
                   help="also time K one-thread processes, each a share of the graphs: the authors' sampler (as "
                        "shipped and flushed) and graphdiff compiled")
    args = p.parse_args()

    import contextlib
    import io

    import torch

    from graphdiff import GraphDiffusionPipeline
    from graphdiff.convert.checkpoints import import_checkpoint
    from graphdiff.data.safe_pickle import safe_load_torch
    from graphdiff.samplers.noise import SampleNoise

    torch.set_num_threads(args.threads)
    started = _common.machine()
    repo = Path(args.gdss_repo)
    src = repo / "checkpoints" / "QM9" / "gdss_qm9.pth"
    root = _common.data_root(args, ["qm9"])
    models = Path(tempfile.mkdtemp(prefix="gdss-authors-"))
    import_checkpoint(src, "gdss", models / "qm9", root=root)
    pipe = GraphDiffusionPipeline.from_pretrained(models / "qm9")
    ck = safe_load_torch(src)
    mx, ma, authors = authors_side(repo, ck, args.steps)
    _, _, authors_flushed = authors_side(repo, ck, args.steps, flush=True)
    n, steps = args.graphs, args.steps
    sizes = SampleNoise.for_run(0, 0, n).node_counts(pipe.schema.node_count_probs())
    knobs = {"snr": SETTINGS["snr"], "scale_eps": SETTINGS["scale_eps"], "predictor": "reverse",
             "n_corrector": SETTINGS["n_steps"], "eps": SETTINGS["eps"]}
    sample = lambda: pipe.sample(n, steps=steps, sampler="pc", seed=0, output="state", **knobs)  # noqa: E731
    timed = {"authors": lambda: authors(sizes), "authors, subnormal weights flushed": lambda: authors_flushed(sizes),
             "graphdiff": sample}
    eager = sample()
    if not args.no_compile:
        pipe.compile(dynamic=False)
        pipe.sample(n, steps=2, sampler="pc", seed=0, output="state", **knobs)  # compile on the timed shape, untimed
        compiled = sample()
        same = _same_graphs([compiled], eager)
        timed["graphdiff compiled"] = sample
    bs = args.batch_size
    if bs is not None:
        if bs < 1:
            p.error(f"--batch-size must be a positive integer, got {bs}")
        batched = lambda: pipe.sample(n, steps=steps, sampler="pc", seed=0, output="state", batch_size=bs,  # noqa: E731
                                      **knobs)
        timed[f"authors, subnormal weights flushed, batches of {bs}"] = lambda: [
            authors_flushed(sizes[i:i + bs]) for i in range(0, n, bs)]
        timed[f"graphdiff, batches of {bs}"] = batched
        if not args.no_compile:
            pipe.sample(n, steps=2, sampler="pc", seed=0, output="state", batch_size=bs, **knobs)  # compile
            same_batched = _same_graphs([batched()], eager)
            timed[f"graphdiff compiled, batches of {bs}"] = batched
    best = {k: float("inf") for k in timed}
    for _ in range(args.repeats):
        for name, fn in timed.items():
            if name.startswith("graphdiff") and "compiled" not in name and not args.no_compile:
                pipe._compiled = None  # eager
            elif name.startswith("graphdiff compiled"):
                pipe.compile(dynamic=False)
            t = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                fn()
            best[name] = min(best[name], time.perf_counter() - t)
            print(f"{name}: {time.perf_counter() - t:.2f} s", flush=True)
    rows = [{"sampler": name, "graphs": n, "steps": steps, "network_calls_per_graph": 2 * steps,
             "seconds": round(best[name], 2), "graphs_per_s": round(n / best[name], 1),
             "x_authors": round(best["authors"] / best[name], 2)} for name in timed]
    if not args.no_compile:
        for r in rows:
            if r["sampler"] == "graphdiff compiled":
                r["identical_to_eager"] = same
            elif r["sampler"].startswith("graphdiff compiled, batches"):
                r["identical_to_eager"] = same_batched
    if args.processes > 1:
        k = args.processes
        for label, flush in (("authors", False), ("authors, subnormal weights flushed", True)):
            _, seconds = _common.in_processes(_authors_worker, k, (str(repo), str(src), steps, sizes, flush))
            rows.append({"sampler": f"{label}, {k} processes x 1 thread", "seconds": round(seconds, 2)})
        parts, seconds = _common.in_processes(_graphdiff_worker, k, (str(models / "qm9"), n, steps, knobs))
        rows.append({"sampler": f"graphdiff compiled, {k} processes x 1 thread", "seconds": round(seconds, 2),
                     "identical_to_eager": _same_graphs(parts, eager)})
        for r in rows[-3:]:
            r.update(graphs=n, steps=steps, network_calls_per_graph=2 * steps,
                     graphs_per_s=round(n / r["seconds"], 1), x_authors=round(best["authors"] / r["seconds"], 2))
    md = ["| sampler | graphs x steps | network calls / graph | seconds (best) | graphs/s | x authors |",
          "|---|---|---:|---:|---:|---:|"]
    md += [f"| {r['sampler']} | {n} x {steps} | {r['network_calls_per_graph']} | {r['seconds']} | "
           f"{r['graphs_per_s']} | {r['x_authors']:.2f} |" for r in rows]
    if not args.no_compile:
        md += ["", f"Compiled samples identical to the eager ones: {same:.1%} of {n} graphs."]
        if bs is not None:
            md += [f"Compiled in batches of {bs}: identical to the one-batch eager ones on {same_batched:.1%} of "
                   f"the graphs (sample i depends only on the seed and i)."]
    if bs is not None:
        md += ["", f"Batched rows: the authors' sampler on consecutive shares of the same node counts, graphdiff with "
               f"`batch_size={bs}`."]
    if args.processes > 1:
        md += ["", f"Sharded rows: {args.processes} one-thread processes started together after loading and warm-up "
               f"(graphdiff: compilation), each sampling a contiguous share of the graphs; a row's time is the "
               f"slowest process's. x authors: over the one-process authors' row ({args.threads} thread(s)). "
               f"graphdiff's shards concatenated equal its eager one-process run on "
               f"{rows[-1]['identical_to_eager']:.1%} of the graphs."]
    md += ["", f"GDSS QM9 checkpoint ({src.name}), {args.threads} torch thread(s), best of {args.repeats} alternating "
           f"runs; the paper's PC settings {SETTINGS}."]
    _common.write_results(args, NAME, {"rows": rows, "settings": SETTINGS}, "\n".join(md), started=started)

if __name__ == "__main__":
    sys.exit(_common.run(main))
