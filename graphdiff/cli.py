"""The ``graphdiff`` command line: one entry point with subcommands.

    graphdiff datasets list
    graphdiff datasets info NAME [--root DIR] [--split S]
    graphdiff datasets prepare NAME [--root DIR] [--force] [--pard-order]
    graphdiff datasets draw NAME [-n 16] [--out grid.png] [--split S] [--seed K]
    graphdiff evaluate --dataset NAME (--samples FILE | --reference train)
    graphdiff train --preset NAME [--out DIR] [--max-minutes M] [--resume]
    graphdiff sample --model DIR -n N [--steps S] [--sampler pc|em|s4|ode] [--seed K] --out FILE
    graphdiff demo
    graphdiff bench list | run SUITE | compare DIR ...
    graphdiff forecast --model DIR|seasonal_naive|ets|arima --context FILE.csv --horizon H --out forecast.csv

NAME is a registered dataset or a path to a custom .smi/.txt/.csv/.sdf/.xyz/.jsonl file. Errors on bad input are
one line (``error: ...``) with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import GraphdiffError


def _dataset_options(args) -> dict:
    opts = {}
    if getattr(args, "explicit_h", False):
        opts["explicit_h"] = True
    if getattr(args, "smiles_column", None):
        opts["smiles_column"] = args.smiles_column
    if getattr(args, "workers", None):
        opts["workers"] = args.workers
    return opts


def _load(args, split=None, force=False):
    import inspect

    from .data import dataset_class, is_custom, load_dataset

    opts = _dataset_options(args)
    # --workers also serves steps after loading (--pard-order); only molecule datasets take it for featurisation
    if "workers" in opts and (is_custom(args.name)
                              or "workers" not in inspect.signature(dataset_class(args.name).__init__).parameters):
        opts.pop("workers")
    if "smiles_column" in opts and not is_custom(args.name):
        raise GraphdiffError(f"--smiles-column is for a custom .csv of molecules; {args.name} is a registered "
                             f"dataset")
    if force:
        opts["force_reload"] = True
    return load_dataset(args.name, root=args.root, split=split, **opts)


def cmd_list(args) -> int:
    from .data import list_datasets, load_card

    print(f"{'name':24} {'kind':9} {'source':10} title")
    for name in list_datasets():
        try:
            card = load_card(name)
        except GraphdiffError:
            card = {}
        print(f"{name:24} {card.get('kind', '?'):9} {card.get('source', '?'):10} {card.get('title', '')}")
    print("\nA path to a .smi, .txt, .csv, .sdf, .xyz or .jsonl file (gzipped or not), a .npy array of images or a "
          "folder of PNGs works wherever NAME is asked for (a dataset of your own).")
    return 0


def _hist_lines(hist: np.ndarray, width: int = 40, max_rows: int = 24) -> list[str]:
    nz = np.flatnonzero(hist)
    if not len(nz):
        return ["  (empty)"]
    lo, hi = int(nz[0]), int(nz[-1])
    step = max(1, -(-(hi - lo + 1) // max_rows))
    rows = [(a, min(a + step, hi + 1) - 1, int(hist[a:a + step].sum())) for a in range(lo, hi + 1, step)]
    top = max(c for *_, c in rows)
    return [f"  {a:>4}{'' if a == b else f'-{b:<4}':5} {c:>8} {'#' * max(1 if c else 0, round(width * c / top))}"
            for a, b, c in rows]


def cmd_info(args) -> int:
    ds = _load(args, split=args.split)
    info, schema = ds.info, ds.schema
    n = ds.num_nodes()
    if args.json:
        print(json.dumps({"name": ds.name, "graphs": len(ds), "schema": schema.to_dict(), "info": info}, indent=1))
        return 0
    print(f"dataset {ds.name} ({schema.kind})" + (f", split {args.split}" if args.split else ""))
    print(f"graphs: {len(ds)}   splits: " + ", ".join(f"{k} {v}" for k, v in ds.split_sizes().items()))
    if len(n):
        print(f"nodes per graph: min {n.min()}, max {n.max()}, mean {n.mean():.2f}   (schema max_nodes "
              f"{schema.max_nodes})")
        m = ds.num_edges() if hasattr(ds, "num_edges") else ds.store.num_edges[ds._idx]  # images: fixed grid
        print(f"edges per graph: min {m.min()}, max {m.max()}, mean {m.mean():.2f}")
        print("node-count histogram:")
        print("\n".join(_hist_lines(np.bincount(n))))
    whole = " (of the whole dataset, every split)" if args.split else ""
    print(f"node marginals{whole}:  " + ", ".join(f"{c} {p:.4f}" for c, p in zip(schema.node_categories,
                                                                                schema.node_marginals)))
    print(f"edge marginals{whole}:  " + ", ".join(f"{c} {p:.4f}" for c, p in zip(schema.edge_categories,
                                                                                schema.edge_marginals)))
    inv = info.get("invalid", {"count": 0, "examples": []})
    print(f"invalid rows skipped: {inv['count']}")
    for ex in inv["examples"]:
        print(f"  {ex['file']}:{ex['line']}: {ex['value']!r}: {ex['reason']}")
    for k in ("split_rule", "index_mapping"):
        if k in info:
            print(f"{k}: {info[k]}")
    for line in getattr(ds, "summary_lines", list)():  # datasets with parts (lggm: per-domain counts)
        print(line)
    return 0


def cmd_prepare(args) -> int:
    from .checks import check_at_least

    check_at_least(args, {"--workers": 1})
    t = time.perf_counter()
    ds = _load(args, force=args.force)
    dt = time.perf_counter() - t
    state = "processed" if ds.processed_now else "cache up to date"
    inv = ds.info.get("invalid", {}).get("count", 0)
    print(f"{ds.name}: {len(ds)} graphs, {inv} invalid rows skipped, {state} in {dt:.1f}s -> {ds.processed_dir}")
    if args.pard_order:
        from .processes.order import blocks_file, dataset_blocks

        t = time.perf_counter()
        fresh = not blocks_file(ds).is_file()
        blocks = dataset_blocks(ds, workers=args.workers, attach=False)
        how = f"ordered in {time.perf_counter() - t:.1f}s" if fresh else "order up to date"
        print(f"{ds.name}: PARD structural order of {len(blocks)} nodes, {how} -> {blocks_file(ds)}")
    return 0


def cmd_draw(args) -> int:
    from .viz import draw_graphs, draw_molecules

    from .checks import check_at_least, check_output_file

    check_at_least(args, {"-n": 1, "--seed": 0})
    check_output_file(args.out, "--out", (".png", ".jpg", ".jpeg", ".pdf"))  # what both PIL and matplotlib write
    ds = _load(args, split=args.split)
    if len(ds) == 0:
        raise GraphdiffError(f"{ds.name}: split {args.split!r} is empty")
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(ds), size=min(args.n, len(ds)), replace=False))
    if hasattr(ds, "grid"):  # images: a PNG grid of the pictures, not of their grid graphs
        from .adapters import save_image_grid

        out = save_image_grid(ds.grid.from_state(ds.batch(idx)), args.out, value_range=ds.grid.value_range)
    elif ds.schema.kind == "molecule":
        from .convert.rdkit import graph_to_mol

        mols = [graph_to_mol(*ds.graph(int(i)), ds.schema) for i in idx]
        out = draw_molecules(mols, args.out)
    else:
        out = draw_graphs(ds.to_networkx([int(i) for i in idx]), args.out, seed=args.seed)
    print(f"drew {len(idx)} graphs of {ds.name} to {out}")
    return 0


def _print_evaluation(res: dict) -> None:
    from .metrics.evaluate import reference_words

    print(f"dataset {res['dataset']}, reference {reference_words(res)}, generated: {res.get('generated', 'samples')}")
    if res["kind"] == "graphs":
        m = res["mmd"]
        print(f"protocol {m['protocol']} ({m['estimator']}), {m['n_generated']} generated "
              f"({m['empty_generated']} empty), {m['n_reference']} reference graphs")
        print(f"{'statistic':12} {'MMD^2':>10} {'95% CI':>23}  kernel        sigma")
        for name, r in m["stats"].items():
            if r.get("mmd2") is None:
                print(f"{name:12} {'-':>10}  {r.get('reason', '')}")
                continue
            ci = f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if "ci_low" in r else ""
            print(f"{name:12} {r['mmd2']:>10.5f} {ci:>23}  {r['kernel']:13} {r['sigma']:g}")
        v, iv = res["vun"], res.get("intervals", {})
        print(", ".join(f"{k} {v[k]:.3f}" + (" [{:.3f}, {:.3f}]".format(*iv[k]["interval"]) if k in iv else "")
                        for k in v if isinstance(v[k], float)) + (" (95% Wilson intervals)" if iv else ""))
    else:
        iv, sv = res.get("intervals", {}), res.get("subset_intervals", {})
        print(f"{'metric':22} {'value':>10}  interval")
        for k, v in res.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seconds":
                ci = iv.get(k, {}).get("interval") or sv.get(k, {}).get("interval") if isinstance(v, float) else None
                extra = f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
                print(f"{k:22} {v:>10.4f}{extra}" if isinstance(v, float) else f"{k:22} {v:>10}")
        for name, d in (res.get("props") or {}).items():
            print(f"{name + ' W1 / KL':22} {d['wasserstein']:>10.4f} / {d['kl']:.4f}")
        for k, why in (res.get("undefined") or {}).items():
            print(f"{k:22} {'-':>10}  ({why})")
        if "skipped" in sv:
            print(f"no intervals of non-fractions: {sv['skipped']}")
        elif sv:
            print(f"intervals of non-fractions: {sv['method']}, subsets of {sv['subset_size']}; set-level figures "
                  "(FCD, NSPDK, Frag, Scaf, IntDiv) depend on the sample size, so their subset interval shows the "
                  "spread and need not contain the full-set value")
    if "note" in res:
        print(f"note: {res['note']}")
    print(f"({res['seconds']:.1f}s)")


def cmd_evaluate(args) -> int:
    from .metrics.evaluate import evaluate_reference, evaluate_samples

    from .checks import check_at_least, check_output_file

    check_at_least(args, {"--seed": 0, "--workers": 1})
    if args.bootstrap < 0:
        raise GraphdiffError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.n_molecules < 0:
        raise GraphdiffError(f"--n-molecules must be >= 0 (0: the whole split), got {args.n_molecules}")
    if args.json:
        check_output_file(args.json, "--json", inputs={"--samples": args.samples, "--dataset": args.dataset})
    stats = tuple(args.stats.split(",")) if args.stats else None
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None
    kw = {k: v for k, v in (("stats", stats), ("workers", args.workers), ("metrics", metrics)) if v is not None}
    if args.relax:
        kw["relax"] = True
    if (args.samples is None) == (args.reference is None):
        raise GraphdiffError("give exactly one of --samples FILE or --reference train")
    if args.subsets < 0:
        raise GraphdiffError(f"--subsets must be >= 0, got {args.subsets}")
    kw["subsets"] = args.subsets
    from .cli_model import _data_options

    options = _data_options(args)
    if args.reference_split is not None and args.samples is None:
        raise GraphdiffError("--reference-split is what --samples are scored against; give --samples FILE")
    if args.samples is not None:
        res = evaluate_samples(args.samples, args.dataset, root=args.root, protocol=args.protocol,
                               bootstrap=args.bootstrap, seed=args.seed, reference=args.reference_split,
                               dataset_options=options, **kw)
    else:
        res = evaluate_reference(args.dataset, root=args.root, protocol=args.protocol, bootstrap=args.bootstrap,
                                 seed=args.seed, n_molecules=args.n_molecules or None, **kw)
    _print_evaluation(res)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"command": "graphdiff " + " ".join(sys.argv[1:]), **res}, fh, indent=1, default=str)
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphdiff", description="Diffusion models for graphs and molecules.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    d = sub.add_parser("datasets", help="list, inspect, prepare and draw datasets")
    dsub = d.add_subparsers(dest="action", required=True)
    dsub.add_parser("list", help="registered datasets").set_defaults(func=cmd_list)

    def common(q):
        q.add_argument("name", help="dataset name or path to a custom file")
        q.add_argument("--root", default=None, help="dataset root (default $GRAPHDIFF_DATA or ~/.cache/graphdiff)")
        q.add_argument("--explicit-h", action="store_true", help="molecules: hydrogens as nodes")
        q.add_argument("--smiles-column", default=None, help="custom .csv: the SMILES column")
        return q

    q = common(dsub.add_parser("info", help="counts, node-count histogram, marginals, invalid rows"))
    q.add_argument("--split", default=None, choices=["train", "val", "test"])
    q.add_argument("--json", action="store_true", help="print everything as JSON")
    q.set_defaults(func=cmd_info)
    q = common(dsub.add_parser("prepare", help="download (if needed) and process into the cache"))
    q.add_argument("--force", action="store_true", help="rebuild the processed cache")
    q.add_argument("--workers", type=int, default=None, help="processes for featurisation (and --pard-order)")
    q.add_argument("--pard-order", action="store_true",
                   help="also store PARD's structural order (blocks per node) with the cache")
    q.set_defaults(func=cmd_prepare)
    q = common(dsub.add_parser("draw", help="draw random graphs/molecules to a PNG"))
    q.add_argument("-n", type=int, default=16)
    q.add_argument("--out", default="grid.png", help="image to write: .png, .jpg or .pdf (default: grid.png)")
    q.add_argument("--split", default=None, choices=["train", "val", "test"])
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_draw)

    from .cli_model import add_smiles_column

    e = sub.add_parser("evaluate", help="evaluate samples (or a dataset's train split) against a dataset")
    e.add_argument("--dataset", required=True, help="dataset name or custom file")
    add_smiles_column(e)
    e.add_argument("--reference-split", default=None, choices=["test", "val", "train", "all"],
                   help="what --samples are scored against (default: a registered dataset's test split, the whole "
                        "of a file of your own)")
    e.add_argument("--samples", default=None,
                   help=".smi (one SMILES per line), .jsonl edge-list file, or .sdf / .xyz 3D molecules")
    e.add_argument("--reference", default=None, choices=["train"],
                   help="score the dataset itself (the data row): the train split (3D datasets: the test split "
                   "against the train split)")
    e.add_argument("--protocol", default=None, choices=["gdss", "spectre"],
                   help="graphs: MMD conventions (default gdss)")
    e.add_argument("--stats", default=None, help="comma-separated graph statistics (default: the protocol's)")
    e.add_argument("--metrics", default=None,
                   help="molecules: comma-separated metrics (default: the dataset's protocol; MOSES has no nspdk)")
    e.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for intervals (0: none)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--n-molecules", type=int, default=10_000,
                   help="--reference train: molecules to draw (0: the whole split; not read for 3D datasets)")
    e.add_argument("--subsets", type=int, default=5,
                   help="molecules: also score K disjoint subsets for intervals of non-fractions (0: off)")
    e.add_argument("--workers", type=int, default=None, help="processes for graph statistics")
    e.add_argument("--relax", action="store_true", help="3D molecules: also RDKit MMFF relaxation (slow)")
    e.add_argument("--root", default=None)
    e.add_argument("--json", default=None, help="write every figure with its settings to this file")
    e.set_defaults(func=cmd_evaluate)

    from .cli_bench import add_bench_commands
    from .cli_forecast import add_forecast_commands
    from .cli_guidance import add_guidance_commands
    from .cli_hub import add_hub_commands
    from .cli_import import add_import_commands
    from .cli_model import add_model_commands

    add_model_commands(sub)
    add_hub_commands(sub)
    add_bench_commands(sub)
    add_import_commands(sub)
    add_forecast_commands(sub)
    add_guidance_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what the user typed (results files record it)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    import warnings

    shown = warnings.formatwarning  # on the command line a warning is one line, without the source line under it
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"
    try:
        return args.func(args)
    except GraphdiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    finally:
        warnings.formatwarning = shown


if __name__ == "__main__":
    sys.exit(main())
