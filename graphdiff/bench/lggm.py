"""``graphdiff bench run lggm``: the leave-one-domain-out protocol of LGGM (Wang et al., "Large Generative Graph
Models", 2024) on the multi-domain corpus ``lggm`` (:mod:`graphdiff.data.multidomain`).

For each held-out domain ``D`` (an entry of the suite, or ``--set lggm.held_out=[...]``):

1. **Pre-train** the entry's preset (a DiGress graph transformer conditioned on the domain; the small CPU network
   on a CPU) on the corpus without ``D`` (``exclude=[D]``) for the wall-clock budget (``--minutes``) or
   ``lggm.pretrain_steps`` optimizer steps, whichever comes first.
2. **Zero-shot**: sample from the pre-trained model with the condition ``domain=D`` (the one-hot column of ``D``
   exists in every corpus, it was never seen with a graph).
3. For each ``n`` in ``lggm.train_graphs`` (default 10 and 50): **fine-tune** the pre-trained model
   (:func:`graphdiff.finetune.finetune`, the library's defaults: fresh AdamW at the pre-training ``lr``,
   ``finetune.warmup_steps`` warm-up; the run's other ``--set train.*`` settings, such as the seed, apply to both
   arms) on ``n`` train graphs of ``D`` for ``K = lggm.finetune_steps`` steps, and train the same preset **from
   scratch** on the same ``n`` graphs for the same ``K`` steps, both with the same batch: the pre-training batch,
   ``n``, or on a CPU the batch of ``D``'s own CPU rows (:data:`graphdiff.bench.suites.CPU_BATCH`, SBM 8), whichever
   is smallest. The ``n`` graphs are the corpus's ``train_limit=n`` selection (seeded, nested: the 10 are among the
   50); the condition columns are the pre-training corpus's (the one-hot over all domains, numeric statistics
   normalised with the pre-training statistics), so nothing is grown.

Every model samples as many graphs as ``D``'s test split (``--samples`` otherwise) with ``domain=D`` and **the node
counts of ``D``'s test graphs** (the same sizes for every method, so the comparison is about structure, not about
the size distribution; ``--samples`` cycles through them), ``lggm.sample_steps`` steps (``--steps``), seed 0. When
the corpus has numeric conditions besides the node count (``dataset_options.conditions`` with ``density``,
``clustering``), each sample asks for the statistics of the training graphs the model was given (the ``n`` graphs;
for the zero-shot model the smallest few-shot set), the LGGM way of asking for a domain's statistics: by default
(``lggm.given=by_size``) the mean over the given graphs nearest the sample's node count
(:func:`graphdiff.data.conditions.statistics_by_size`), since a domain's density moves with its size (SBM's from
about 0.15 at 50 nodes to 0.06 at 180); ``lggm.given=mean``, one mean over all of them for every sample (what runs
before this key asked). Each such row also records how closely its samples met what they were asked
(``adherence``, :func:`graphdiff.data.conditions.condition_adherence`: asked and achieved means, their ratio, the
mean error and the correlation over the samples), so samples that miss the density they were asked for show as such.
Scores
(:func:`score`): SPECTRE-protocol MMD^2 of degree, clustering, orbit and spectral statistics against ``D``'s whole
test split, each with a 95% bootstrap interval, and V.U.N. (novelty against ``D``'s whole train split) where ``D``
has a validity rule (:func:`graphdiff.metrics.vun.validity_for_dataset`: planar, sbm, tree, grid, lobster). The
summary counts the (domain, n) pairs on which the fine-tuned model's mean MMD^2 (over the four statistics) is below
the scratch model's; it is computed from the rows, never written by hand.

Cost on 2 CPU cores (timed here at load average ~3.4, so an idle machine is roughly 3x faster): a training step of
the small CPU network takes ~8 s on the corpus (batch 16), ~14 s on SBM (batch 8), ~4 s on ENZYMES (batch 16);
sampling 16 SBM graphs for 5 steps ~19 s. At the defaults that is about 3 hours idle for the four domains, SBM
about half of it. An 8-minute pre-training is only a few hundred steps on a CPU (fewer than ``K``): a longer
``--minutes`` (or a GPU) gives the fine-tune a more trained base.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..config import load_preset, merge
from ..errors import ConfigError, DataError
from .lggm_protocol import DEFAULT_HELD_OUT, NODE_COUNTS, Protocol
from .lggm_report import STATS, markdown_lines, mean_mmd, summarize, transfer_lines, write_report
from .lggm_select import ValidationSelection
from .suites import CPU_BATCH


# ---- data ------------------------------------------------------------------------------------------------------
def corpus_options(options: dict, held_out: str) -> dict:
    """The pre-training corpus's dataset options: ``options`` with ``held_out`` added to ``exclude``."""
    opts = dict(options)
    exclude = opts.get("exclude") or []
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    opts["exclude"] = sorted(set(exclude) | {held_out})
    return opts


def held_out_options(options: dict, held_out: str, condition_stats: dict | None, n: int | None = None) -> dict:
    """Options of ``held_out``'s own set: its graphs only, the pre-training corpus's condition statistics (so the
    condition columns mean the same), and ``train_limit=n`` for a few-shot training set. ``family_max_nodes``
    stays only where ``held_out`` is a family it sizes (elsewhere it changes nothing of the set)."""
    from ..data.multidomain import SIZED, pinned_stats

    opts = {k: v for k, v in options.items() if k not in ("domains", "exclude")
            and (k != "family_max_nodes" or held_out in SIZED)}
    opts["domains"] = [held_out]
    if opts.get("conditions"):
        stats = opts.get("condition_stats") or condition_stats
        names = [opts["conditions"]] if isinstance(opts["conditions"], str) else list(opts["conditions"])
        opts["condition_stats"] = pinned_stats(stats, names) if isinstance(stats, dict) else stats
    if n is not None:
        opts["train_limit"] = n
    return opts


def reused_pretrain(folder: Path, domain: str, pre_opts: dict, preset) -> dict:
    """The pre-training record of held-out ``domain`` in a previous run's ``folder`` (``lggm.pretrained``), its
    model at ``folder/runs/<domain>/pretrain``; refused (one line) when that run pre-trained on another corpus or
    another network than this run would, or saw ``domain``."""
    import json

    where = f"lggm.pretrained {folder}"
    try:
        rows = json.loads((folder / "results.json").read_text()).get("rows") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: results.json cannot be read ({exc})") from None
    made = [r for r in rows if (r.get("pretrain") or {}).get("model")]  # a scratch-only run pre-trained nothing
    record = next((r["pretrain"] for r in made if r.get("held_out") == domain), None)
    if record is None:
        held = sorted({str(r.get("held_out")) for r in made})
        raise ConfigError(f"{where}: no model pre-trained without {domain} (it holds: {', '.join(held) or 'none'})")
    from ..errors import CheckpointError
    from ..train.checkpoint import resolve_checkpoint

    model = folder / "runs" / domain / "pretrain"
    try:
        cfg = json.loads((resolve_checkpoint(model) / "config.json").read_text())
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigError(f"{where}: no pre-trained model in {model} ({exc})") from None
    seen = cfg.get("dataset_options") or {}
    if domain not in (seen.get("exclude") or []):
        raise ConfigError(f"{where}: the model in {model} was pre-trained with {domain} in its corpus")
    differ = sorted(k for k in set(record.get("dataset_options") or {}) | set(pre_opts)
                    if (record.get("dataset_options") or {}).get(k) != pre_opts.get(k))
    differ += [f"model.{k}" for k, v in preset.model.items() if k in (cfg.get("model") or {}) and cfg["model"][k] != v]
    if differ:
        raise ConfigError(f"{where}: that run pre-trained with other settings than this one ({', '.join(differ)})")
    return {**record, "model": str(model), "reused_from": str(folder)}


def _counts(ds, split: str) -> dict[str, int]:
    return {k: v for k, v in ds.split(split).domain_counts().items() if v}


# ---- scoring ---------------------------------------------------------------------------------------------------
def score(graphs, reference, train, domain: str, *, bootstrap: int, seed: int = 0) -> dict:
    """SPECTRE-protocol MMD^2 (:data:`STATS`, bootstrap intervals) of ``graphs`` against ``reference`` and
    V.U.N. against ``train`` with ``domain``'s validity rule (``None`` figures where it has none)."""
    from ..metrics.mmd import graph_mmd
    from ..metrics.vun import validity_for_dataset, vun

    return {"kind": "graphs", "dataset": f"lggm/{domain}", "reference_split": "test",
            "mmd": graph_mmd(graphs, reference, protocol="spectre", stats=STATS, bootstrap=bootstrap, seed=seed),
            "vun": vun(list(graphs), train, validity_for_dataset(domain))}


# ---- one held-out domain ---------------------------------------------------------------------------------------
def given_statistics(graphs, names) -> dict:
    """``{name: mean}`` of the numeric condition statistics ``names`` over ``graphs`` (networkx)."""
    from ..data.conditions import networkx_statistics

    if not names or not graphs:
        return {}
    values = networkx_statistics(graphs, names)
    return {name: round(float(v), 6) for name, v in zip(names, values.mean(0))}


def asked_statistics(graphs, names, sizes: list[int], rule: str) -> dict:
    """The numeric conditions ``names`` (but ``n_nodes``) asked of samples of node counts ``sizes``, from the
    ``graphs`` a model was given, by ``rule`` (:attr:`Protocol.given`): ``{name: value}`` for ``mean``, ``{name:
    [one value per size]}`` for ``by_size``."""
    from ..data.conditions import statistics_by_size

    names = [k for k in names if k != "n_nodes"]
    if not names or not graphs:
        return {}
    return given_statistics(graphs, names) if rule == "mean" else statistics_by_size(graphs, names, sizes)


def _sample(pipe, domain: str, sizes: list[int], proto: Protocol, progress: bool, given=None):
    """``given``: the graphs (networkx) whose statistics the model is asked for, :func:`asked_statistics`."""
    from ..data.conditions import condition_adherence
    from .record import _calls_per_graph

    cond: dict = {"domain": domain}
    numeric = ((pipe.schema.extra or {}).get("conditions") or {}).get("numeric", {})
    if "n_nodes" in numeric:
        cond["n_nodes"] = sizes
    cond.update(asked_statistics(given or [], list(numeric), sizes, proto.given))
    if hasattr(pipe.process, "reset_stats"):
        pipe.process.reset_stats()
    t = time.perf_counter()
    graphs = pipe.sample(len(sizes), steps=proto.sample_steps, seed=proto.seed, n_nodes=sizes, cond=cond,
                         output="networkx", batch_size=proto.sample_batch, progress=progress)
    sec = time.perf_counter() - t
    asks = {k: v for k, v in cond.items() if k not in ("domain", "n_nodes")}
    return graphs, {"steps": proto.sample_steps, "samples": len(sizes), "sample_seconds": round(sec, 1),
                    "graphs_per_second": round(len(sizes) / sec, 2),
                    "network_calls_per_graph": _calls_per_graph(pipe, proto.sample_steps),
                    "cond": {k: v for k, v in cond.items() if k != "n_nodes"}, "node_counts": NODE_COUNTS,
                    "sizes": list(sizes),  # the node count of each sample (a by-size condition's values follow it)
                    **({"adherence": condition_adherence(graphs, asks)} if asks else {})}


def _check_domain_data(ds, domain: str, n: int | None, where: str) -> None:
    counts = _counts(ds, "train")
    want = {domain: n} if n is not None else None
    if want is not None and counts != want:
        raise DataError(f"lggm: the {where} set has train graphs {counts}, expected {want}")


def run_domain(entry, domain: str, proto: Protocol, *, overrides: dict, root: Path, out: Path, progress: bool,
               cuda: bool):
    """The rows of held-out ``domain``: zero-shot, then fine-tuned and scratch per ``n`` (see the module
    docstring). A generator, so that the caller writes the results after every row."""
    from ..data import load_dataset
    from ..pipeline import GraphDiffusionPipeline
    from .references import metrics_from_result

    base = load_preset(entry.preset, overrides)
    if base.dataset != "lggm":
        raise ConfigError(f"bench lggm: preset {entry.preset} trains on {base.dataset!r}; the protocol needs the "
                          "multi-domain corpus (dataset lggm)")
    options = dict(base.dataset_options)
    run = out / "runs" / domain
    # every set first: a held-out domain without its raw file fails before any training
    pre_opts = corpus_options(options, domain)
    pre_ds = load_dataset("lggm", root=root, **pre_opts)
    stats = ((pre_ds.schema.extra or {}).get("conditions") or {}).get("numeric") or None
    eval_opts = held_out_options(options, domain, stats)
    eval_ds = load_dataset("lggm", root=root, **eval_opts)
    if domain in pre_ds.domains or eval_ds.domains != [domain]:
        raise DataError(f"lggm: held-out domain {domain} leaked into pre-training or is missing from its own set")
    n_train, test = len(eval_ds.split("train")), eval_ds.split("test")
    if len(test) == 0:
        raise DataError(f"lggm: held-out domain {domain} has no test graphs to score against")
    for n in proto.train_graphs:
        if n > n_train:
            raise ConfigError(f"lggm.train_graphs: held-out domain {domain} has {n_train} train graphs, cannot "
                              f"fine-tune on {n}")
    reference, train_graphs = test.to_networkx(), eval_ds.split("train").to_networkx()
    sizes = [int(v) for v in np.resize(test.num_nodes(), proto.samples or len(test))]
    val = eval_ds.split("val")
    if proto.select_every and len(val) == 0:
        raise DataError(f"lggm.select_every: held-out domain {domain} has no validation graphs to select on")

    pre_over = merge(overrides, {"dataset_options": pre_opts, "train": {"max_steps": proto.pretrain_steps}})
    if set(proto.methods) == {"scratch"}:  # nothing needs a base: record the corpus the conditions are scaled on
        preset = load_preset(entry.preset, pre_over)
        named = reused_pretrain(Path(proto.pretrained), domain, pre_opts, preset) if proto.pretrained else None
        print(f"== lggm: held out {domain}: scratch arm only, no pre-training", flush=True)
        pretrain = {"model": None, "steps": 0, "seconds": 0.0, "stopped_by": "none (scratch arm only)",
                    # the batch of the fine-tunes it is compared with, where a base is named
                    "batch_size": named["batch_size"] if named else preset.train.batch_size,
                    **({"batch_from": named["reused_from"]} if named else {}),
                    "lr": preset.train.lr, "dataset_options": pre_opts,
                    "graphs": len(pre_ds), "train_domain_counts": _counts(pre_ds, "train"), "not_pretrained": True}
        params = sum(p.numel() for p in GraphDiffusionPipeline.from_preset(preset, pre_ds, root=root)
                     .denoiser.parameters())
    elif proto.pretrained:
        pretrain = reused_pretrain(Path(proto.pretrained), domain, pre_opts, load_preset(entry.preset, pre_over))
        print(f"== lggm: held out {domain}: the model pre-trained in {proto.pretrained} ({pretrain['steps']} steps)",
              flush=True)
        params = sum(p.numel() for p in GraphDiffusionPipeline.from_pretrained(pretrain["model"]).denoiser.parameters())
    else:
        print(f"== lggm: held out {domain}: pre-training on {len(pre_ds.domains)} domains ({len(pre_ds)} graphs)",
              flush=True)
        t = time.perf_counter()
        pipe = GraphDiffusionPipeline.from_preset(load_preset(entry.preset, pre_over), pre_ds, root=root)
        pipe.fit(pre_ds, out=run / "pretrain", max_minutes=proto.pretrain_minutes, progress=progress, overwrite=True)
        s = pipe.summary
        pretrain = {"model": str((run / "pretrain").resolve()), "steps": s["steps"], "epochs": s["epochs"],
                    "minutes": proto.pretrain_minutes, "max_steps": proto.pretrain_steps,
                    "stopped_by": s["stopped_by"], "final_loss": s["loss"],
                    "seconds": round(time.perf_counter() - t, 1), "batch_size": pipe.config.train.batch_size,
                    "lr": pipe.config.train.lr, "dataset_options": pre_opts, "graphs": len(pre_ds),
                    "train_domain_counts": _counts(pre_ds, "train"), "skipped": sorted(pre_ds.info.get("skipped", {}))}
        params = sum(p.numel() for p in pipe.denoiser.parameters())
        del pipe
    base_dir = Path(pretrain["model"]) if pretrain["model"] else None
    common = {"held_out": domain, "dataset": f"lggm/{domain}", "preset": entry.preset, "reference": None,
              "protocol": "spectre", "overrides": overrides, "parameters": params, "cuda": cuda, "pretrain": pretrain,
              "evaluation": {"test_graphs": len(test), "train_graphs": n_train, "dataset_options": eval_opts}}

    # numeric conditions other than the node count (density, clustering) come from the graphs a model was given
    # (asked_statistics); the zero-shot model gets the smallest few-shot set's
    numeric = [k for k in (stats or {}) if k != "n_nodes"]
    fewest = min(proto.train_graphs)
    zero_given = load_dataset("lggm", root=root, **held_out_options(
        options, domain, stats, fewest)).split("train").to_networkx() if numeric else []

    def row(method: str, n: int, model, train: dict, model_dir: Path, data: dict | None = None,
            given=None, **extra) -> dict:
        graphs, sampled = _sample(model, domain, sizes, proto, progress, given)
        res = score(graphs, reference, train_graphs, domain, bootstrap=proto.bootstrap, seed=proto.seed)
        metrics = metrics_from_result(res)
        metrics["mean_mmd"] = mean_mmd(metrics)
        label = method if method == "zero-shot" else f"{method} n={n}"
        print(f"  {domain} {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if v is not None),
              flush=True)
        return {"entry": f"{domain}/{label}", "method": method, "train_graphs": n, **common,
                "process": model.process.name, "sampler": model.config.sample.sampler, "train": train,
                "model": str(model_dir), "data": data, **extra, **sampled, "metrics": metrics, "result": res}

    if "zero-shot" in proto.methods:
        zero = GraphDiffusionPipeline.from_pretrained(base_dir)
        yield row("zero-shot", 0, zero, {"steps": 0, "minutes": None, "loaded_from": str(base_dir),
                                         "batch_size": pretrain["batch_size"]}, base_dir, given=zero_given)
        del zero
    k = proto.finetune_steps
    scratch_seed = load_preset(entry.preset, overrides).train.seed  # both arms train with it
    for n in proto.train_graphs:
        # K steps exactly, whatever the set's size; batches of the pre-training size, the whole set, or on a CPU
        # the batch of the domain's own CPU rows (SBM: 8), whichever is smallest
        bs = min(pretrain["batch_size"], n, CPU_BATCH.get(domain, n) if not cuda else n)
        budget = {"max_steps": k, "epochs": k + 1, "ckpt_every": 0, "batch_size": bs}
        opts = held_out_options(options, domain, stats, n)
        ds = load_dataset("lggm", root=root, **opts)
        _check_domain_data(ds, domain, n, f"n={n} fine-tuning")
        data = {"dataset_options": opts, "train_domain_counts": _counts(ds, "train")}
        given = ds.split("train").to_networkx() if numeric else []

        def selection(pipe=None, given=given):
            if not proto.select_every:
                return None
            sel = ValidationSelection(proto.select_every, k, lambda p: _sample(
                p, domain, [int(v) for v in val.num_nodes()], proto, False, given)[0], val.to_networkx())
            if pipe is not None:  # the fine-tune's starting point is a candidate
                sel.consider(pipe, 0)
            return sel

        if "fine-tuned" in proto.methods:
            t = time.perf_counter()
            base_pipe = GraphDiffusionPipeline.from_pretrained(base_dir)
            transfer = bool((overrides.get("finetune") or {}).get("condition_transfer"))
            sel = selection(None if transfer else base_pipe)  # with a transfer the fine-tune does not start at the base
            ft = base_pipe.finetune(ds, out=run / f"finetune-n{n}", max_steps=k, progress=progress,
                                    overrides={"train": merge(finetune_train(overrides, scratch_seed), budget),
                                               "finetune": overrides.get("finetune") or {}},
                                    callbacks=[sel] if sel else ())
            ft_dir = _selected(ft, sel, run / f"finetune-n{n}" / "model")
            yield row("fine-tuned", n, ft, {**_train_record(ft, t),
                                            "trainable_parameters": ft.summary["trainable_parameters"]},
                      ft_dir, data, given, lineage=ft.config.finetune.lineage[-1],
                      **({"selection": sel.record()} if sel else {}))
            del base_pipe, ft

        if "scratch" in proto.methods:
            t = time.perf_counter()
            preset = load_preset(entry.preset, merge(overrides, {"dataset_options": opts}))
            sc = GraphDiffusionPipeline.from_preset(preset, ds, root=root)
            sel = selection()
            sc.fit(ds, out=run / f"scratch-n{n}", progress=progress, train=budget, overwrite=True,
                   callbacks=[sel] if sel else ())
            sc_dir = _selected(sc, sel, Path(sc.checkpoint))
            yield row("scratch", n, sc, _train_record(sc, t), sc_dir, data, given,
                      **({"selection": sel.record()} if sel else {}))
            del sc


def _train_record(pipe, started: float) -> dict:
    """What a trained arm's row says of its training (``started``: ``time.perf_counter()`` before it)."""
    sec, tc = time.perf_counter() - started, pipe.config.train
    return {"steps": pipe.summary["steps"], "minutes": round(sec / 60, 3), "seconds": round(sec, 1),
            "batch_size": tc.batch_size, "lr": tc.lr, "warmup_steps": tc.warmup_steps, "seed": tc.seed,
            "stopped_by": pipe.summary["stopped_by"], "final_loss": pipe.summary["loss"]}


def finetune_train(overrides: dict, seed: int) -> dict:
    """The run's ``--set train.*`` settings for the fine-tune (threads, EMA, ...: the same as the scratch arm's) and
    the scratch arm's training ``seed`` (given or the preset's, not the base run's), less the learning rate and
    warm-up, which a fine-tune takes from ``finetune.*``."""
    train = {k: v for k, v in (overrides.get("train") or {}).items() if k not in ("lr", "warmup_steps")}
    return {**train, "seed": seed}


def _selected(pipe, sel, folder: Path) -> Path:
    """``folder`` (the arm's last-step model), or with selection the chosen weights loaded into ``pipe`` and saved
    beside it (``<arm>/selected``, its recorded step the chosen one) when they are not the last step's."""
    import shutil

    out = folder.parent / "selected"
    if out.exists():  # an earlier run's choice in the same --out
        shutil.rmtree(out)
    if sel is None or sel.best_step in (None, pipe.summary["steps"]):
        return folder
    sel.apply(pipe)
    pipe.trained_steps = sel.best_step
    pipe.save_pretrained(out)
    return out


# ---- the run ---------------------------------------------------------------------------------------------------
def run_lggm(suite, *, out, minutes=None, samples=None, overrides=None, model=None, root=None, raw_from=None,
             only=None, bootstrap: int = 100, progress: bool = False, command: str | None = None, steps=None) -> dict:
    """Run the protocol for the suite's held-out domains; writes ``results.json`` / ``results.md`` after every
    row (arguments as :func:`graphdiff.bench.runner.run_suite`; ``overrides["lggm"]`` holds :class:`Protocol`'s
    keys, the rest applies to the preset)."""
    import dataclasses

    import torch

    from ..checks import suggest
    from .offline import link_raw
    from .record import entry_overrides, new_results

    if model is not None:
        raise ConfigError("--model: the lggm suite pre-trains and fine-tunes its own models; run it without --model")
    user = dict(overrides or {})
    settings = user.pop("lggm", None) or {}
    entries = {e.held_out: e for e in suite.entries}
    proto = Protocol.from_run(settings, held_out=list(entries), minutes=minutes, samples=samples, steps=steps,
                              bootstrap=bootstrap, default_minutes=suite.entries[0].minutes,
                              default_steps=(suite.entries[0].steps or (Protocol.sample_steps,))[0])
    domains = list(proto.held_out)
    for o in only or ():
        if o not in domains:
            raise ConfigError(f"--only {o!r} is not a held-out domain of this run{suggest(o, domains)}; held out: "
                              f"{', '.join(domains)}")
    domains = [d for d in domains if not only or d in only]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else out / "data"
    linked = link_raw(root, suite.datasets, raw_from)
    cuda = torch.cuda.is_available()
    t_start = time.time()
    settings = {"held_out": domains, "train_graphs": list(proto.train_graphs), "finetune_steps": proto.finetune_steps,
                "pretrain_minutes": proto.pretrain_minutes, "pretrain_steps": proto.pretrain_steps,
                "sample_steps": proto.sample_steps, "samples": proto.samples, "sample_batch": proto.sample_batch,
                "bootstrap": bootstrap, "seed": proto.seed, "node_counts": NODE_COUNTS, "overrides": user,
                "pretrained": proto.pretrained, "select_every": proto.select_every,
                "methods": list(proto.methods), "given": proto.given, "raw_files_linked": len(linked)}
    results = new_results(suite, command, settings)
    template = suite.entries[0]
    for domain in domains:
        entry = entries.get(domain) or dataclasses.replace(template, held_out=domain)
        over = entry_overrides(entry, user, not cuda)
        for r in run_domain(entry, domain, proto, overrides=over, root=root, out=out, progress=progress,
                            cuda=cuda):
            results["rows"].append(r)
            results["summary"] = summarize(results["rows"], proto.methods)
            write_report(out, results)  # after every row: a stopped run keeps what it measured
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["wall_minutes"] = round((time.time() - t_start) / 60, 2)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["summary"] = summarize(results["rows"], proto.methods)
    write_report(out, results)
    return results


__all__ = ["Protocol", "run_lggm", "run_domain", "score", "summarize", "markdown_lines", "transfer_lines",
           "corpus_options", "given_statistics", "asked_statistics", "held_out_options", "DEFAULT_HELD_OUT", "STATS"]
