"""The report of a ``graphdiff bench run lggm`` run (:mod:`graphdiff.bench.lggm`): the summary line computed from
its rows, ``results.md`` (one table per held-out domain, the condition transfers of its fine-tunes, the settings)."""

from __future__ import annotations

import numpy as np

STATS = ("degree", "clustering", "orbit", "spectral")


def mean_mmd(metrics: dict) -> float | None:
    """The mean of the :data:`STATS` MMD^2 figures in ``metrics`` (``None`` when one is missing)."""
    vals = [metrics.get(s) for s in STATS]
    return None if any(v is None for v in vals) else float(np.mean(vals))


def _find(rows, domain, method, n):
    return next((r for r in rows if r["held_out"] == domain and r["method"] == method and r["train_graphs"] == n),
                None)


def summarize(rows, methods=None) -> dict:
    """Fine-tuned against scratch on every (held-out domain, n) pair present in ``rows``: mean MMD^2, each
    statistic (and whether the 95% bootstrap intervals are disjoint), V.U.N. where defined; with the summary
    line of ``results.md``."""
    pairs = []
    for r in rows:
        if r["method"] != "fine-tuned":
            continue
        sc = _find(rows, r["held_out"], "scratch", r["train_graphs"])
        if sc is None:
            continue
        fm, sm = r["metrics"].get("mean_mmd"), sc["metrics"].get("mean_mmd")
        stats = {}
        for s in STATS:
            a, b = r["result"]["mmd"]["stats"].get(s, {}), sc["result"]["mmd"]["stats"].get(s, {})
            if a.get("mmd2") is None or b.get("mmd2") is None:
                continue
            stats[s] = {"lower": a["mmd2"] < b["mmd2"],
                        "disjoint": a.get("ci_high") is not None and b.get("ci_low") is not None
                        and a["ci_high"] < b["ci_low"]}
        fv, sv = r["metrics"].get("vun"), sc["metrics"].get("vun")
        pairs.append({"held_out": r["held_out"], "train_graphs": r["train_graphs"], "fine_tuned_mean_mmd": fm,
                      "scratch_mean_mmd": sm, "fine_tuned_wins": fm is not None and (sm is None or fm < sm),
                      "statistics": stats, "vun": None if fv is None or sv is None else {"fine_tuned": fv,
                                                                                         "scratch": sv}})
    wins = sum(p["fine_tuned_wins"] for p in pairs)
    triples = [s for p in pairs for s in p["statistics"].values()]
    lower = sum(s["lower"] for s in triples)
    disjoint = sum(s["lower"] and s["disjoint"] for s in triples)
    vuns = [p["vun"] for p in pairs if p["vun"] is not None]
    vun_wins = sum(v["fine_tuned"] > v["scratch"] for v in vuns)
    line = (f"Fine-tuned beats scratch on {wins} of {len(pairs)} (domain, n) pairs on mean MMD^2 "
            f"({', '.join(STATS)}; lower is better). Per statistic: lower on {lower} of {len(triples)} (domain, n, "
            f"statistic) triples, {disjoint} of them with disjoint 95% bootstrap intervals.")
    if vuns:
        line += f" V.U.N. (where validity is defined): higher on {vun_wins} of {len(vuns)} pairs."
    if methods is not None and not {"fine-tuned", "scratch"} <= set(methods):
        arms = sorted(methods)
        line = (f"This run has {', '.join(arms)} rows only (lggm.methods), no fine-tuned and scratch pair; "
                f"`graphdiff bench compare` sets it beside a run that has the other arm.")
    return {"pairs": pairs, "wins": wins, "total": len(pairs), "statistic_lower": lower,
            "statistic_total": len(triples), "statistic_disjoint": disjoint, "vun_wins": vun_wins,
            "vun_total": len(vuns), "line": line}


def _cell(r, s) -> str:
    st = r["result"]["mmd"]["stats"].get(s) or {}
    v = st.get("mmd2")
    if v is None:
        return "-"
    ci = f" [{st['ci_low']:.3g}, {st['ci_high']:.3g}]" if st.get("ci_low") is not None else ""
    return f"{v:.4g}{ci}"


def _num(v, fmt=".3g") -> str:
    return "-" if v is None else format(v, fmt)


def write_report(out, results: dict) -> None:
    """Write ``results.json`` and ``results.md`` (header and :func:`markdown_lines`) of an lggm run into ``out``."""
    from .record import header_lines, write_results

    write_results(out, results, "\n".join(header_lines(results) + markdown_lines(results)) + "\n")


def transfer_lines(rows) -> list[str]:
    """One line per fine-tune with ``finetune.condition_transfer`` (its lineage's record,
    :func:`graphdiff.condition_transfer.transfer_conditions`): which domain's column explained the data best, by how
    many standard errors, and whether the fine-tune started from it."""
    out = []
    for r in rows:
        for rec in (r.get("lineage") or {}).get("condition_transfer") or []:
            losses, own, group = rec.get("losses") or {}, rec["value"], rec["group"]
            z, need = rec.get("z"), rec.get("threshold", 3.0)
            others = {k: v for k, v in losses.items() if k != own}
            best = min(others, key=others.get) if others else None
            if rec.get("from") or (best is not None and others[best] < losses.get(own, float("inf"))):
                margin = (f"{_num(z, '.3g')} standard errors of the paired differences" if z is not None else
                          "every paired difference the same, an unbounded margin")
                src = rec.get("from") or best
                what = (f"lowest base loss under `{src}` ({_num(losses.get(src), '.4g')} against its own "
                        f"{_num(losses.get(own), '.4g')}, {margin}; the threshold is {need:g}): "
                        + (f"started from `{rec['from']}`'s column" if rec.get("from") else "kept its own column"))
            else:
                what = f"its own column has the lowest base loss ({_num(losses.get(own), '.4g')}): kept its own column"
            spread = (f"; base losses over the {len(losses)} {group} values {min(losses.values()):.4g} to "
                      f"{max(losses.values()):.4g}" if losses else "")
            out.append(f"Condition transfer, fine-tuned n={r['train_graphs']}: {group} `{own}`: {what}{spread}.")
    return out + [""] if out else out


def selection_lines(rows) -> list[str]:
    """One line per arm run with ``lggm.select_every``: the validation figure of every candidate, the step chosen."""
    out = []
    for r in rows:
        sel = r.get("selection")
        if not sel:
            continue
        scores = ", ".join(f"{k}: {_num(v, '.4g')}" for k, v in sel["scores"].items())
        out.append(f"Selection, {r['method']} n={r['train_graphs']}: validation mean MMD^2 by step ({scores}) on "
                   f"{sel['val_graphs']} graphs; step {sel['chosen_step']} chosen and scored.")
    return out + [""] if out else out


def adherence_lines(rows) -> list[str]:
    """One line per row whose samples were asked for numeric conditions: asked against achieved, per statistic."""
    out = []
    for r in rows:
        adh = r.get("adherence")
        if not adh:
            continue
        label = r["method"] if r["method"] == "zero-shot" else f"{r['method']} n={r['train_graphs']}"
        parts = []
        for name, a in adh.items():
            ratio = f"{a['ratio']:.2f}x, " if a.get("ratio") is not None else ""
            rel = (f"mean |error| {100 * a['relative_error']:.0f}% of the ask" if a.get("relative_error") is not None
                   else f"mean |error| {_num(a['mean_abs_error'])}")
            corr = f", r = {a['correlation']:.2f}" if a.get("correlation") is not None else ""
            parts.append(f"{name} asked {_num(a['asked'], '.3g')}, got {_num(a['got'], '.3g')} ({ratio}{rel}{corr})")
        out.append(f"Conditions met, {label} ({next(iter(adh.values()))['graphs']} samples; means over them): "
                   + "; ".join(parts) + ".")
    return out + [""] if out else out


def markdown_lines(results: dict) -> list[str]:
    """The body of ``results.md`` for an lggm run: the summary, one table per held-out domain, the settings."""
    rows = results["rows"]
    lines = ["**" + summarize(rows, (results.get("settings") or {}).get("methods"))["line"] + "**", ""]
    for domain in dict.fromkeys(r["held_out"] for r in rows):
        rs = [r for r in rows if r["held_out"] == domain]
        pre, ev = rs[0]["pretrain"], rs[0]["evaluation"]
        corpus = (f"{len(pre['train_domain_counts'])} domains ({sum(pre['train_domain_counts'].values())} train "
                  "graphs)")
        lines += [f"## Held out: {domain}", "",
                  (f"Nothing pre-trained (the scratch arm only; the corpus without {domain}, {corpus}, scales the "
                   "numeric conditions); " if pre.get("not_pretrained") else
                   f"Pre-trained without {domain} on {corpus} for {pre['steps']} steps "
                   f"({pre['seconds'] / 60:.3g} min, stopped by {pre['stopped_by']}, batch {pre['batch_size']}"
                   + (f"; pre-trained by the run in {pre['reused_from']}" if pre.get("reused_from") else "") + "); ")
                  + f"every model scored against the {ev['test_graphs']} test graphs of {domain} (novelty against its "
                  f"{ev['train_graphs']} train graphs). MMD^2 with 95% bootstrap intervals.", "",
                  f"| method | {domain} train graphs | steps on {domain} | " + " | ".join(STATS)
                  + " | mean MMD^2 | V.U.N. | valid | unique | novel | samples | sample s |",
                  "|---|---:|---:|" + "---|" * len(STATS) + "---:|---:|---:|---:|---:|---:|---:|"]
        for r in rs:
            m = r["metrics"]
            label = r["method"] if r["method"] == "zero-shot" else f"{r['method']} n={r['train_graphs']}"
            lines.append(f"| {label} | {r['train_graphs']} | {r['train']['steps']} | "
                         + " | ".join(_cell(r, s) for s in STATS)
                         + f" | {_num(m.get('mean_mmd'), '.4g')} | {_num(m.get('vun'))} | {_num(m.get('valid'))} | "
                         f"{_num(m.get('unique'))} | {_num(m.get('novel'))} | {r['samples']} | {r['sample_seconds']} |")
        lines.append("")
        lines += transfer_lines(rs) + selection_lines(rs) + adherence_lines(rs)
    s = results["settings"]
    ft = next((r["train"] for r in rows if r["method"] == "fine-tuned"), None)
    sc = next((r["train"] for r in rows if r["method"] == "scratch"), None)
    lines += ["## Settings", "",
              f"- Fine-tuned and scratch: {s['finetune_steps']} optimizer steps each on the held-out domain's n "
              f"train graphs (n = {', '.join(map(str, s['train_graphs']))}; the same graphs for both, seeded, the "
              "smaller set inside the larger)"
              + (f"; fine-tune lr {ft['lr']:g} with {ft['warmup_steps']} warm-up steps ("
                 + ("--set finetune.*" if (s.get("overrides") or {}).get("finetune") else "the finetune defaults")
                 + "), "
                 f"scratch lr {sc['lr']:g} with {sc['warmup_steps']} (the preset's)" if ft and sc else "") + ".",
              ("- Pre-trained models: none (the scratch arm only)." if rows[0]["pretrain"].get("not_pretrained") else
               f"- Pre-trained models: those of the run in {s['pretrained']} (budgets in the sections above)."
               if s.get("pretrained") else "- Pre-training budget per held-out domain: "
               + (f"{s['pretrain_minutes']:g} min" if s["pretrain_minutes"] is not None else "no clock limit")
               + (f", at most {s['pretrain_steps']} steps" if s["pretrain_steps"] is not None else "") + "."),
              f"- Sampling: {s['sample_steps']} steps, seed {s['seed']}, condition domain = the held-out domain, "
              f"node counts: {s['node_counts']}.",
              *given_lines(rows, s),
              "- Zero-shot: the pre-trained model sampled with the held-out domain's condition, never trained on it.",
              *([f"- Checkpoint selection: every {s['select_every']} steps and the last (the fine-tune's starting "
                 "base too, unless it transfers a condition), by the mean MMD^2 on the held-out domain's validation "
                 "graphs; the test graphs score the chosen weights."] if s.get("select_every") else []),
              "- V.U.N. only where the domain has a validity rule (planar, sbm, tree, grid, lobster).", ""]
    return lines


def given_lines(rows: list[dict], settings: dict) -> list[str]:
    """The settings line on the numeric conditions the samples were asked for, where the corpus has some."""
    names = sorted({k for r in rows for k in ((r.get("cond") or {}) if isinstance(r.get("cond"), dict) else {})
                    if k != "domain"})
    if not names:
        return []
    rule = settings.get("given") or "mean"
    how = ("the mean over the k given graphs nearest the sample's node count (k: the square root of their number, "
           "rounded) and any as near as the k-th" if rule == "by_size" else
           "their mean over all the given graphs, the same for every sample")
    sized = any("n_nodes" in (((r.get("pretrain") or {}).get("dataset_options") or {}).get("conditions") or [])
                for r in rows)
    return [f"- Numeric conditions: {', '.join(names)} of the graphs each model was given (the n train graphs; the "
            f"zero-shot model the smallest set's): {how} (lggm.given={rule})"
            + ("; n_nodes the sample's own." if sized else ".")]


__all__ = ["STATS", "mean_mmd", "summarize", "transfer_lines", "selection_lines", "adherence_lines", "markdown_lines",
           "write_report"]
