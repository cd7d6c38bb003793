"""``graphdiff models``: list the named models, show a model card, pack a trained run into a card-carrying model.

    graphdiff models list
    graphdiff models info NAME_OR_FOLDER
    graphdiff models pack RUN --name NAME [--out DIR] [--samples 10000] [--steps 50] [--set sample.steps=50]
                          [--command "graphdiff train ..."] [--reference-out FILE] [--root DIR]
                          [--scales 2 4 8 16] [--variants quantile ...] [--plots DIR]

``pack`` writes the weights the run samples with (EMA when present) and its resolved config, measures the model
and writes the model card (``README.md``): the training command, data and split, trained steps, wall time, threads
and machine, and the measured figures. Graph and molecule models sample ``--samples`` graphs scored by the pinned
evaluator against the dataset's test split (``--reference-out`` also packs the dataset's molecule reference,
:mod:`graphdiff.metrics.packed_reference`, for scoring without the dataset); time-series and image models are
measured by :mod:`graphdiff.pack_fixed_graph` (self-guided forecasts against seasonal naive and ETS, with the
guidance scale chosen on validation windows stored as the model's default; images: the digits Frechet distance
and a grid of samples).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import time
from pathlib import Path

from .errors import ConfigError, DataError
from .pack_3d import card_value as _fmt


def cmd_models_list(args) -> int:
    from .hub import model_index

    idx = model_index()
    if not idx:
        print("no named models")
        return 0
    rows = [(name, e.process, e.dataset, "bundled" if e.bundled else "download", e.description)
            for name, e in idx.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]  # every column as wide as its longest entry
    for r in rows:
        print("  ".join(f"{v:{w}}" for v, w in zip(r[:4], widths)) + f"  {r[4]}")
    return 0


def condition_line(folder: Path) -> str | None:
    """How to ask a conditioned model for a condition from the command line (``--cond NAME=VALUE`` with its names
    and categories, read from the model's ``config.json``), or ``None`` for a model without graph conditions."""
    folder = Path(folder)
    found = next((d / "config.json" for d in (folder, folder / "model", folder / "checkpoint")
                  if (d / "config.json").is_file()), None)  # read only: no checkpoint folder is repaired here
    try:
        cfg = json.loads(found.read_text(encoding="utf-8")) if found is not None else {}
    except (OSError, ValueError):
        return None
    schema = cfg.get("schema") or {}
    spec = (schema.get("extra") or {}).get("conditions") if isinstance(schema.get("extra"), dict) else None
    parts = [f"{g}={'|'.join(names)}" for g, names in ((spec or {}).get("categorical") or {}).items()]
    parts += [f"{k}=NUMBER" for k in ((spec or {}).get("numeric") or {})] if spec else \
        [f"{k}=NUMBER" for k in schema.get("graph_features") or []]
    if not parts:
        return None
    return ("Conditions (graphdiff sample --cond NAME=VALUE, repeatable; --guidance W for classifier-free "
            "guidance): " + "; ".join(parts))


def cmd_models_info(args) -> int:
    from .hub import read_card, resolve_model

    folder = resolve_model(args.model)
    card = read_card(folder)
    if card:
        print(card)
    else:
        from .train.checkpoint import resolve_checkpoint

        resolve_checkpoint(folder)  # a file or a folder that holds no model: the one-line error says so
        print(f"{folder}: a model without a card (README.md); graphdiff models pack writes one")
    line = condition_line(folder)
    if line:
        print(line)
    return 0


def _run_facts(run: Path, step: int | None = None) -> dict:
    """Wall time and threads up to ``step`` (default: the end) from a run folder's ``log.jsonl`` (empty when
    absent)."""
    log = run / "log.jsonl"
    if not log.is_file():
        return {}
    last, threads = None, set()
    with open(log, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "seconds" in rec and "step" in rec:
                if step is not None and rec["step"] > step:
                    break
                last = rec
                if "threads" in rec:
                    threads.add(rec["threads"])
    if last is None:
        return {}
    return {"seconds": float(last["seconds"]), "threads": sorted(threads)}


def _base_steps(lineage: list) -> str:
    """`` (this fine-tune), after the base model's N`` for a fine-tuned model's card, else nothing."""
    if not lineage:
        return ""
    last = lineage[-1]
    return f" (this fine-tune), after {_count(last.get('base_steps'))} of `{last.get('base', '?')}`"


def _count(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def _lineage_lines(lineage: list) -> list[str]:
    """One card line per fine-tune the model went through, oldest first."""
    out = []
    for rec in lineage:
        sha = f", sha256 {rec['base_sha256'][:12]}" if rec.get("base_sha256") else ""
        new = rec.get("new_node_categories") or []
        trained = rec.get("trainable_parameters")
        out.append(f"- fine-tuned from `{rec.get('base', '?')}` ({_count(rec.get('base_steps'))} steps{sha}) on "
                   f"`{rec.get('data', '?')}` for {_count(rec.get('steps'))} steps, {rec.get('method', 'full')}"
                   + (f", {_count(trained)} of {_count(rec.get('parameters'))} parameters trained" if trained else "")
                   + (f", new node categories {', '.join(new)}" if new else ""))
    return out


def _measure_graphs(pipe, args, dataset: str, threads_line: str) -> dict:
    """Sample ``--samples`` graphs and score them with the pinned evaluator against the test split (a user's own
    file: against the whole file)."""
    from .metrics.evaluate import evaluate_samples, reference_words

    n = args.samples or 10_000
    t = time.perf_counter()
    samples = pipe.sample(n, seed=0, output="smiles" if pipe.schema.kind == "molecule" else "networkx")
    sample_s = time.perf_counter() - t
    options = _own_data_options(pipe, args, dataset)
    res = evaluate_samples(samples, dataset, root=args.root, subsets=0,
                           protocol=None if pipe.schema.kind == "molecule" else args.protocol,
                           dataset_options=options)
    if args.reference_out and pipe.schema.kind == "molecule":
        from .data import load_dataset
        from .metrics.packed_reference import pack_reference

        pack_reference(load_dataset(dataset, root=args.root, **options), args.reference_out,
                       reference=res["reference_split"],
                       novelty=res.get("novelty_split", "train"))  # what the card's figures were scored against
    keys = (["validity_strict", "uniqueness", "novelty", "valid_unique_novel", "fcd", "nspdk", "snn", "frag", "scaf",
             "filters"] if res["kind"] == "molecules" else [])
    rows = [(k, res.get(k)) for k in keys if k in res]
    if res["kind"] == "graphs":
        rows += [(f"MMD^2 {k} ({res['mmd']['protocol']})", d.get("mmd2")) for k, d in res["mmd"]["stats"].items()]
        rows += [(k, v) for k, v in (res.get("vun") or {}).items() if isinstance(v, float)]
    line = (f"{n:,} samples (seed 0) with the {pipe.config.sample.sampler or 'default'} sampler at "
            f"{pipe.config.sample.steps} steps in {sample_s:.1f} s ({n / sample_s:.1f} graphs/s; {threads_line}), "
            f"scored by `graphdiff evaluate` against {reference_words(res, 'the ')}")
    split = res.get("settings", {}).get("train_smiles", "train split")
    return {"table": ["| metric | value |", "|---|---:|", *[f"| {k} | {_fmt(v)} |" for k, v in rows]],
            "line": line, "data": f"`{dataset}` train split ({split})",
            "metrics": {"samples": n, "steps": pipe.config.sample.steps, "sample_seconds": round(sample_s, 2), **res}}


def _own_data_options(pipe, args, dataset: str) -> dict:
    """How to read ``dataset`` for scoring: a file of the user's own as it was read for training (its SMILES column,
    its conformers), plus the command's own data options; a registered dataset is scored whole, as published figures
    are, whatever subset the model trained on."""
    from .cli_model import _data_options
    from .data import is_user_source, model_data_options

    own = model_data_options(pipe.config, dataset) if is_user_source(dataset) else {}
    return {**own, **_data_options(args)}


def cmd_models_pack(args) -> int:
    from .adapters import fixed_graph_spec
    from .config import RunConfig, merge, parse_overrides
    from .pipeline import GraphDiffusionPipeline
    from .checks import check_at_least, check_output_file, check_output_folder
    from .train.checkpoint import check_replaceable, resolve_checkpoint

    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}")
    check_at_least(args, {"--steps": 1})
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):  # it names a folder (models/NAME) and a model
        raise ConfigError(f"--name must be letters, digits, '.', '_' and '-', starting with a letter or digit, got "
                          f"{args.name!r}")
    dest = check_output_folder(Path(args.out) if args.out else Path("models") / args.name)
    if (dest / "config.json").is_file() and not args.overwrite:
        raise ConfigError(f"{dest} already holds a model; its weights and card would be replaced: give --overwrite, "
                          f"or another --out")
    check_replaceable(dest)
    if args.reference_out:
        check_output_file(args.reference_out, "--reference-out")
    run = Path(args.run)
    from .hub import model_index

    if run.is_file() or (not run.exists() and args.run not in model_index()):
        raise ConfigError(f"{run}: {'a file, not a' if run.exists() else 'no such'} run folder (or model name)")
    ckpt_dir = resolve_checkpoint(run)
    # a run's checkpoint/ or a fine-tune's model/: the run folder (log.jsonl, command.txt) is the parent
    run_dir = ckpt_dir.parent if ckpt_dir.name == "checkpoint" or (
        ckpt_dir.name == "model" and (ckpt_dir.parent / "log.jsonl").is_file()) else ckpt_dir
    pipe = GraphDiffusionPipeline.from_pretrained(run)
    over = parse_overrides(args.set)
    if args.steps is not None:
        over = merge(over, {"sample": {"steps": args.steps}})
    if over:
        pipe.config = RunConfig.from_dict(merge(pipe.config.to_dict(), over), where="--set")
    out = Path(args.out) if args.out else Path("models") / args.name
    command = args.command
    if command is None and (run_dir / "command.txt").is_file():
        command = (run_dir / "command.txt").read_text(encoding="utf-8").strip()
    facts = _run_facts(run_dir, pipe.trained_steps)
    n_params = sum(p.numel() for p in pipe.denoiser.parameters())
    dataset = args.dataset or pipe.config.dataset
    from .data import recorded_file_gone

    gone = recorded_file_gone(pipe.config)
    if args.dataset is None and (str(dataset).startswith("custom/") or gone):  # checked before any sample is drawn
        where = " (not there any more)" if gone else ""
        raise ConfigError(f"{run} was trained on a file of your own ({dataset}{where}); give it with --dataset FILE, "
                          "so that the samples are scored against it")
    kind = (fixed_graph_spec(pipe.schema) or {}).get("adapter")
    from .pack_3d import is_3d, measure_3d

    if args.reference_out and is_3d(pipe):
        raise ConfigError("--reference-out packs a SMILES reference for 2D molecule models; a 3D model's card is "
                          "scored by the 3D evaluator")
    from .train.threads import ThreadPolicy

    threads = ThreadPolicy("auto")
    threads_line = threads.start()
    try:
        if kind == "path":
            from .pack_fixed_graph import measure_series

            try:  # the series are read before any sample is drawn
                m = measure_series(pipe, dataset=dataset, samples=args.samples or 100, scales=args.scales,
                                   plots=args.plots, variants=args.variants)
            except DataError as exc:
                if args.dataset is not None:
                    raise
                raise ConfigError(f"{exc}; if {run} was trained on a .csv of your own, give it with --dataset "
                                  "FILE") from None
        elif kind == "grid":
            from .pack_fixed_graph import measure_images

            m = measure_images(pipe, dataset=dataset, samples=args.samples, root=args.root)
        elif is_3d(pipe):
            m = measure_3d(pipe, dataset, _own_data_options(pipe, args, dataset), samples=args.samples or 10_000,
                           root=args.root, threads_line=threads_line)
        else:
            m = _measure_graphs(pipe, args, dataset, threads_line)
    finally:
        threads.restore()
    if kind in ("path", "grid"):
        m["line"] += f" ({threads_line})"
    pipe.save_pretrained(out)
    if "write" in m:
        m["write"](out)
    size = (out / "model.safetensors").stat().st_size
    wall = facts.get("seconds")
    card = [
        f"# {args.name}",
        "",
        f"{pipe.process.name} on {pipe.config.dataset}: {n_params:,} parameters "
        f"({size / 1e6:.2f} MB of float32 weights), " + (
            f"not trained by graphdiff: {pipe.config.description}."
            if "imported by graphdiff import-checkpoint" in (pipe.config.description or "")
            else "trained by graphdiff's own commands."),
        "",
        "## Training",
        "",
        f"- command: `{command or 'not recorded'}`",
        f"- data: {m['data']}",
        f"- trained steps: {pipe.trained_steps:,}" + _base_steps(pipe.config.finetune.lineage),
        *_lineage_lines(pipe.config.finetune.lineage),
        (f"- wall time: {wall / 60:.1f} min" + (" (this fine-tune)" if pipe.config.finetune.lineage else "")
         if wall else "- wall time: not recorded"),
        f"- device: CPU ({platform.machine()}, {os.cpu_count()} cores), torch threads "
        f"{', '.join(map(str, facts.get('threads', []))) or 'not recorded'}",
        f"- weights: {'EMA' if pipe.config.sample.use_ema else 'raw'} weights of the final checkpoint",
        "",
        "## Measured",
        "",
        f"`graphdiff {shlex.join(getattr(args, 'argv', []))}`: {m['line']}.",
        "",
        *m["table"],
        "",
        f"Packed {time.strftime('%Y-%m-%d')} by graphdiff {_version()}.",
        "",
    ]
    (out / "README.md").write_text("\n".join(card), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(m["metrics"], indent=1, default=str), encoding="utf-8")
    print("\n".join(card))
    print(f"wrote {out}")
    return 0


def _version() -> str:
    from ._version import __version__

    return __version__


def add_hub_commands(sub) -> None:
    from .cli_model import add_smiles_column

    m = sub.add_parser("models", help="named pretrained models: list, show a card, pack a run")
    msub = m.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="the named models").set_defaults(func=cmd_models_list)
    q = msub.add_parser("info", help="print a model's card")
    q.add_argument("model", help="model name or folder")
    q.set_defaults(func=cmd_models_info)
    q = msub.add_parser("pack", help="a trained run -> model folder with a measured card")
    q.add_argument("run", help="run folder (or checkpoint folder)")
    q.add_argument("--name", required=True)
    q.add_argument("--out", default=None, help="model folder (default models/NAME)")
    q.add_argument("--overwrite", action="store_true", help="replace the model (weights and card) already in --out")
    q.add_argument("--samples", type=int, default=None,
                   help="samples scored for the card (graphs: 10,000; series: sample paths per window, 100; "
                        "images: as many as the test split)")
    q.add_argument("--steps", type=int, default=None, help="sampling steps (stored as sample.steps)")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the stored config")
    q.add_argument("--command", default=None, help="the training command (default: the run's command.txt)")
    q.add_argument("--reference-out", default=None, help="molecules: also pack the dataset's reference here")
    q.add_argument("--protocol", default="spectre", choices=["gdss", "spectre"], help="graphs: MMD conventions")
    q.add_argument("--dataset", default=None, help="dataset name or file to score against (default: the model's; "
                                                    "a custom dataset needs its file)")
    add_smiles_column(q)
    q.add_argument("--root", default=None, help="dataset root")
    q.add_argument("--scales", type=float, nargs="+", default=[2.0, 4.0, 8.0, 16.0],
                   help="series: self-guidance scales the validation windows choose from (the model's default)")
    q.add_argument("--variants", nargs="+", default=["quantile"],
                   help="series: self-guidance variants tried with every scale (quantile, mse, quantile+replace, "
                        "mse+replace)")
    q.add_argument("--plots", default=None, help="series: draw each series' last test window to DIR/SERIES.png")
    q.set_defaults(func=cmd_models_pack)
