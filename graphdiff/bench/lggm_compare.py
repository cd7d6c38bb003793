"""``graphdiff bench compare`` over several ``lggm`` results folders: repeated runs of the protocol (training and
sampling seeds, ``--set train.seed=S --set lggm.seed=S``), and runs that hold one arm each (``lggm.methods``), read
together, so that "fine-tuned beats scratch" rests on paired runs rather than on one.

Rows are grouped by the comparison they belong to: held-out domain, training-set size ``n``, fine-tuning steps ``K``,
checkpoint selection, sampling steps and samples, how the samples were asked for numeric conditions (``lggm.given``),
the held-out domain's own set (its dataset options as the row's
``evaluation`` records them: the numeric conditions and their scaling, which the scratch arm shares; the pre-training
corpus's options where a row has no such record), the preset, its network's size and the device. So bases pre-trained
on other corpora pair with one scratch arm where they scale the held-out set's conditions alike. Within a
group a row is an arm (the zero-shot row with the smallest ``n`` of its run, whose statistics it was asked for; the arms
named with the ``--set`` settings that change them, ``finetune.*`` for the fine-tuned one, so two fine-tune recipes stay
apart; the zero-shot and fine-tuned arms also by their pre-trained base, its folder and steps, while the scratch arm
owes nothing to a base and is one arm whatever base its run named) and a seed (the training seed, recorded in the row or
given by ``--set train.seed``, and the sampling seed ``lggm.seed``). So fine-tunes of a new base pair with the scratch
runs already made. A scratch row of one seed in two runs is read once if both score the same, and refused if not. Per
arm: the mean MMD^2 of each seed, their mean and sample standard deviation. Per fine-tuned arm: in how many seeds that
have a scratch row it is below scratch, and the ratio of the means. Only what the results files hold is printed; nothing
is re-scored.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import DataError

__all__ = ["compare_lggm"]

ASKED = {"by_size": "by node count (lggm.given=by_size)", "mean": "as one mean (lggm.given=mean)"}


def _seed(row: dict, res: dict) -> tuple[int, int]:
    settings = res.get("settings") or {}
    train = row.get("train") or {}
    given = ((settings.get("overrides") or {}).get("train") or {}).get("seed", 0)
    return int(train.get("seed", given)), int(settings.get("seed", 0))


def _arm(row: dict, res: dict) -> str:
    """The row's method, with the run's ``--set`` settings that change what the arm is: ``finetune.*`` for the
    fine-tuned arm, ``train.*`` (but the seed and threads) and ``sample.*`` for every trained arm."""
    method = str(row.get("method"))
    over = (res.get("settings") or {}).get("overrides") or {}
    given = {f"train.{k}": v for k, v in (over.get("train") or {}).items() if k not in ("seed", "threads")}
    given.update({f"sample.{k}": v for k, v in (over.get("sample") or {}).items()})
    if method == "fine-tuned":
        given.update({f"finetune.{k}": v for k, v in (over.get("finetune") or {}).items()})
    if method == "zero-shot":
        given = {k: v for k, v in given.items() if k.startswith("sample.")}
    return method + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(given.items())) + ")" if given else "")


def _base(row: dict) -> tuple | None:
    """The pre-trained base of a zero-shot or fine-tuned row (folder, steps); ``None`` for scratch."""
    if row.get("method") == "scratch":
        return None
    pre = row.get("pretrain") or {}
    return str(pre.get("model")), pre.get("steps")


def _asked(row: dict, settings: dict) -> str | None:
    """How the row's samples were asked for numeric conditions besides the node count (``lggm.given``; a run made
    before that key asked for the mean), ``None`` where the corpus has none."""
    conditions = ((row.get("pretrain") or {}).get("dataset_options") or {}).get("conditions") or []
    conditions = [conditions] if isinstance(conditions, str) else list(conditions)
    return (settings.get("given") or "mean") if set(conditions) - {"n_nodes"} else None


def _corpus(row: dict) -> str:
    return json.dumps((row.get("pretrain") or {}).get("dataset_options"), sort_keys=True)


def _held_out_set(row: dict) -> str:
    """What the scratch arm's data shares with the row: the held-out set's options but its ``train_limit`` (``n``
    is a key of its own), or the pre-training corpus's options for a row without an ``evaluation`` record."""
    opts = ((row.get("evaluation") or {}).get("dataset_options"))
    if not isinstance(opts, dict):
        return "corpus " + _corpus(row)
    return "set " + json.dumps({k: v for k, v in opts.items() if k != "train_limit"}, sort_keys=True)


def _group(row: dict, res: dict) -> tuple:
    settings = res.get("settings") or {}
    corpus = _held_out_set(row)
    n = int(row.get("train_graphs") or 0)
    if row.get("method") == "zero-shot":  # asked for the statistics of the run's smallest few-shot set
        n = min(settings.get("train_graphs") or [0])
    return (str(row.get("held_out")), n, settings.get("finetune_steps"), settings.get("select_every") or 0, corpus,
            settings.get("sample_steps"), settings.get("samples"), row.get("preset"), row.get("parameters"),
            bool(row.get("cuda")), _asked(row, settings))


def _fmt(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.4f}"


def _label(arm: tuple, names: dict) -> str:
    return arm[0] + (f" on {names[arm[1]]}" if arm[1] in names else "")


def compare_lggm(named: list[tuple[str, dict]]) -> str:
    """The comparison of the module docstring for ``named`` = ``[(folder, results), ...]``, as markdown."""
    groups: dict[tuple, dict[tuple, dict[tuple, tuple[float, str]]]] = {}
    corpora: dict[tuple, dict[str, list[tuple]]] = {}  # group -> pre-training corpus -> the arms that name it
    again: dict[tuple, list[str]] = {}  # scratch rows read twice (one computation, named by two runs)
    for folder, res in named:
        for row in res.get("rows") or []:
            value = (row.get("metrics") or {}).get("mean_mmd")
            if value is None:
                continue
            key = _group(row, res)
            arm = (_arm(row, res), _base(row))
            listed = corpora.setdefault(key, {}).setdefault(_corpus(row), [])
            if arm not in listed:
                listed.append(arm)
            seeds = groups.setdefault(key, {}).setdefault(arm, {})
            seed = _seed(row, res)
            if seed in seeds and row.get("method") == "scratch" and seeds[seed][1] != folder:
                kept, first = seeds[seed]
                if kept != float(value):  # not one computation: other code, batch or machine
                    raise DataError(f"{folder}: {row.get('entry')} with seeds {seed[0]}/{seed[1]} scores "
                                    f"{_fmt(float(value))} where {first} has {_fmt(kept)} (compare them apart)")
                again.setdefault(key, []).append(
                    f"- scratch seed {seed[0]}/{seed[1]} is in {first} and in {folder} ({_fmt(kept)} in both).")
                continue
            if seed in seeds:
                raise DataError(f"{folder}: {row.get('entry')} with seeds {seed[0]}/{seed[1]} is in {seeds[seed][1]} "
                                f"too (compare each run once; a second recipe on the same base and seeds: run it with "
                                f"lggm.methods=[fine-tuned])")
            seeds[seed] = (float(value), folder)
    if not groups:
        return "(no rows)\n"
    out = []
    for key, arms in groups.items():
        domain, n, k, every, corpus, sample_steps, samples, preset, params, cuda, asked = key
        bases = list(dict.fromkeys(b for _, b in arms if b is not None))
        names = {b: f"base {i + 1}" for i, b in enumerate(bases)} if len(bases) > 1 else {}
        where = (f", base {bases[0][0]} ({bases[0][1]} steps)" if len(bases) == 1 else
                 f", {len(bases)} bases" if bases else "")
        out.append(f"### {domain}, n = {n}, K = {k}, selection every {every or '-'} steps{where}, "
                   f"{sample_steps} sampling steps, {samples or 'test-split'} samples, {preset}, "
                   f"{params if params is None else f'{params:,}'} parameters, {'CUDA' if cuda else 'CPU'}"
                   + ("" if asked is None else f", conditions asked {ASKED.get(asked, asked)}") + "\n")
        out += [f"- {names[b]}: {b[0]} ({b[1]} steps)" for b in bases if b in names]
        if corpus.startswith("set "):
            out.append(f"- held-out set: {corpus[4:]}")
        if len(corpora[key]) == 1:
            out.append(f"- pre-training corpus: {next(iter(corpora[key]))}")
        else:  # bases of other corpora (and scratch runs that name one) on one held-out set
            out += [f"- pre-training corpus of {', '.join(_label(a, names) for a in arms_)}: {c}"
                    for c, arms_ in corpora[key].items()]
        out.append("")
        seeds = sorted({s for by in arms.values() for s in by})
        head = ["arm", *[f"seed {t}/{s}" for t, s in seeds], "mean", "sd"]
        out += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]

        for arm, by in arms.items():
            vals = [by[s][0] for s in seeds if s in by]
            sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
            out.append("| " + " | ".join([_label(arm, names), *[_fmt(by[s][0]) if s in by else "-" for s in seeds],
                                          _fmt(float(np.mean(vals))), _fmt(sd)]) + " |")
        out.append("")
        scratch = arms.get(("scratch", None), {})
        for arm, by in arms.items():
            if not arm[0].startswith("fine-tuned"):
                continue
            paired = [s for s in by if s in scratch]
            if not paired:
                out.append(f"- {_label(arm, names)}: no scratch row with the same seeds.")
                continue
            lower = sum(by[s][0] < scratch[s][0] for s in paired)
            fm, sm = np.mean([by[s][0] for s in paired]), np.mean([scratch[s][0] for s in paired])
            ratio = f" ({fm / sm:.2f}x)" if sm > 0 and np.isfinite(sm) else ""
            out.append(f"- {_label(arm, names)}: below scratch in {lower} of {len(paired)} seeds; mean over those "
                       f"seeds {_fmt(fm)} against {_fmt(sm)}{ratio}.")
        out += again.get(key, [])
        out.append("")
    out.append("Seeds are training seed / sampling seed (`--set train.seed`, `lggm.seed`); figures are mean MMD^2 over "
               "degree, clustering, orbit and spectral against the held-out test graphs (lower is better). The "
               "scratch arm trains on the held-out graphs alone, so its rows pair with fine-tunes of any base.")
    return "\n".join(out) + "\n"
