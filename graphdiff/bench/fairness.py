"""``graphdiff bench run fairness``: FAROS attribute switching against the unguided model on attributed SBM graphs.

For each entry (a DiGress or DeFoG preset trained for ``--minutes`` on ``synth_sbm_attr``, whose node category is a
sensitive group attribute that the edges depend on; or ``--model DIR`` with ``--only ENTRY``) every method draws
``--samples`` graphs (default 64) at the entry's sampling steps (``--steps``), seed 0:

- ``unguided``: the pretrained sampler;
- ``faros t=T``: :func:`graphdiff.guidance.faros.faros`, every group node's category redrawn from equal group
  proportions at the fraction ``T`` of the trajectory (``--set fairness.switch_times=[...]``; 1.0 relabels the
  finished samples, the bound of what switching can buy without any say of the model).

Scores (:mod:`graphdiff.metrics.fairness`): the dyadic demographic-parity gap ``|P(edge | same group) - P(edge |
different groups)|``, the two edge rates, the group-pair gap and the group balance, pooled over the samples; the
structure against the test graphs as GDSS-protocol MMD^2 of degree and clustering histograms (no bootstrap); the
network calls per sample and the category changes per sample. A ``data (train)`` row scores as many training graphs
the same way, the floor of the MMD columns and the gap the model learns from.
"""

from __future__ import annotations

import time
from pathlib import Path


from ..checks import check_keys
from ..errors import ConfigError
from .record import cell

KEYS = ("switch_times", "fraction", "seed")
COLUMNS = ("method", "parity_gap", "intra_edge_rate", "inter_edge_rate", "group_pair_gap", "group_balance",
           "mmd_degree", "mmd_clustering", "network_calls_per_sample", "changed_nodes_per_sample", "seconds")


def _settings(overrides: dict | None) -> tuple[dict, dict]:
    """The suite's own settings (``fairness.KEY``) and the preset overrides (the rest of ``--set``)."""
    over = dict(overrides or {})
    s = dict(over.pop("fairness", None) or {})
    check_keys(s, KEYS, "--set fairness")
    times = s.get("switch_times", [0.5, 0.9, 1.0])
    times = [times] if isinstance(times, (int, float)) else list(times)
    if not times or not all(isinstance(t, (int, float)) and 0.0 <= float(t) <= 1.0 for t in times):
        raise ConfigError(f"--set fairness.switch_times: fractions of the trajectory in [0, 1], got {times!r}")
    fraction = float(s.get("fraction", 1.0))
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"--set fairness.fraction must be in [0, 1], got {fraction}")
    return {"switch_times": [float(t) for t in times], "fraction": fraction, "seed": int(s.get("seed", 0))}, over


def entry_samples(entries) -> int:
    """The suite's default sample count (its first entry's)."""
    return int(next((e.samples for e in entries if e.samples), 64))


def score_graphs(graphs, test) -> dict:
    """The row's fairness and structure columns for networkx graphs with a ``label`` group on every node."""
    from ..metrics.fairness import fairness_report
    from ..metrics.mmd import graph_mmd

    rep = fairness_report(graphs)
    mmd = graph_mmd(graphs, test, protocol="gdss", stats=("degree", "clustering"), bootstrap=0)["stats"]
    return {**{k: rep[k] for k in ("parity_gap", "intra_edge_rate", "inter_edge_rate", "group_pair_gap",
                                   "group_balance", "group_shares")},
            "mmd_degree": mmd["degree"].get("mmd2"), "mmd_clustering": mmd["clustering"].get("mmd2")}


def run_fairness(suite, *, out, minutes=None, samples=None, overrides=None, model=None, root=None, raw_from=None,
                 only=None, bootstrap=None, progress=False, command=None, steps=None) -> dict:
    """Run the fairness suite (see the module docstring); writes ``results.json`` / ``results.md`` after every
    method and returns the results."""
    import torch

    from ..config import load_preset
    from ..data import load_dataset
    from ..guidance.faros import faros
    from ..guidance.search import CallCounter
    from ..pipeline import GraphDiffusionPipeline
    from .record import entry_overrides, finish_results, machine, new_results, save_progress

    cfg, user = _settings(overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else out / "data"
    entries = [e for e in suite.entries if not only or e.name in only]
    if model is not None and len(entries) != 1:
        raise ConfigError("bench run fairness --model: pick one entry with --only")
    n, seed = int(samples or entry_samples(entries)), cfg["seed"]
    started, t_start = machine(), time.time()
    results = new_results(suite, command, {"samples": n, "steps": steps, "minutes": minutes, **cfg},
                          machine_info=started)
    for entry in entries:
        t = time.perf_counter()
        if model is not None:
            pipe = GraphDiffusionPipeline.from_pretrained(model)
            train = {"loaded_from": str(model)}
        else:
            over = entry_overrides(entry, user, cpu=not torch.cuda.is_available())
            budget = float(minutes if minutes is not None else entry.minutes)
            pipe = GraphDiffusionPipeline.fit(None, preset=load_preset(entry.preset, over), out=out / "runs" /
                                              entry.name, root=root, max_minutes=budget, progress=progress,
                                              overwrite=True)
            s = pipe.summary
            train = {"minutes": budget, "steps": s["steps"], "final_loss": s["loss"], "stopped_by": s["stopped_by"]}
        train["seconds"] = round(time.perf_counter() - t, 1)
        ds = load_dataset(pipe.config.dataset, root=root)
        test = ds.split("test").to_networkx()
        st = int((steps or [None])[0] or (entry.steps or (pipe.config.sample.steps,))[0])
        base = {"entry": entry.name, "samples": n, "steps": st, "train": train}
        data = ds.split("train").to_networkx()[:n]
        results["rows"].append({**base, "method": "data (train)", "key": "data", **score_graphs(data, test),
                                "network_calls_per_sample": 0.0, "changed_nodes_per_sample": 0.0, "seconds": 0.0})
        methods = [("unguided", None)] + [(f"faros t={s:g}", s) for s in cfg["switch_times"]]
        for label, switch in methods:
            print(f"== fairness: {entry.name}: {label}", flush=True)
            t = time.perf_counter()
            if switch is None:
                with CallCounter(pipe.denoiser) as c:
                    graphs = pipe.sample(n, steps=st, seed=seed, output="networkx", progress=False)
                cost = {"network_calls_per_sample": c.graph_calls / n, "changed_nodes_per_sample": 0.0}
            else:
                g = faros(pipe, n, switch_time=switch, fraction=cfg["fraction"], steps=st, seed=seed)
                graphs, cost = g.samples, g.cost
            sec = time.perf_counter() - t
            results["rows"].append({**base, "method": label, "key": "faros" if switch is not None else "unguided",
                                    "switch_time": switch, **score_graphs(graphs, test),
                                    "network_calls_per_sample": cost["network_calls_per_sample"],
                                    "changed_nodes_per_sample": cost["changed_nodes_per_sample"],
                                    "seconds": round(sec, 1), "cost": cost})
            save_progress(out, results, markdown)
    return finish_results(out, results, markdown, t_start)


def markdown(results: dict) -> str:
    """The results as one table per entry, with the training budget, the command and the machine's load."""
    lines = [f"# {results['suite']}", "", results["description"], ""]
    for entry in dict.fromkeys(r["entry"] for r in results["rows"]):
        rows = [r for r in results["rows"] if r["entry"] == entry]
        tr = rows[0]["train"]
        how = (f"loaded from {tr['loaded_from']}" if "loaded_from" in tr else
               f"trained {tr.get('minutes')} min ({tr.get('steps')} steps, final loss {cell(tr.get('final_loss'))})")
        lines += [f"## {entry}: {how}; {rows[0]['samples']} graphs per method, {rows[0]['steps']} steps, seed "
                  f"{results['settings'].get('seed', 0)}", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell(r.get(c)) for c in COLUMNS) + " |" for r in rows]
        lines.append("")
    m = results.get("machine", {})
    lines += [f"`{results['command']}`", "",
              f"parity_gap = |P(edge | same group) - P(edge | different groups)| pooled over the samples; MMD^2 "
              f"against the test graphs (GDSS protocol, no bootstrap). Machine: {m.get('device', '?')}, torch "
              f"threads {m.get('torch_threads', '?')}, load average {m.get('load_average', '?')} at the start, "
              f"{results.get('load_average_at_end', '?')} at the end."]
    return "\n".join(lines) + "\n"


__all__ = ["run_fairness", "markdown", "score_graphs"]
