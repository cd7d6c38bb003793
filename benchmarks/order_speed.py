"""Speed of PARD's structural partial order (``graphdiff.processes.order.store_blocks``) on a whole molecule store.

    python benchmarks/order_speed.py [--dataset auto|moses|qm9] [--root DIR] [--limit N] [--workers 1]
                                     [--max-hops 3] [--repeats 3] [--check 2000] [--raw-from DIR] [--out DIR]

Dataset: ``auto`` takes MOSES (train + test, read from the ``molsets`` wheel by ``graphdiff.data.molecules``) when
the wheel or ``<root>/moses/raw`` holds its files, else QM9 from the offline copies (``--raw-from``, linked into
``<root>/qm9/raw`` by ``graphdiff.bench.offline``). The store is prepared first when ``<root>`` has no cache for it
(the preparation time is reported apart); ``--limit`` reads only the first N rows of each raw file (the loader's
``limit``).
``--root`` defaults to a temporary folder, removed afterwards.

``store_blocks`` then runs ``--repeats`` times; reported: the best and the median wall time, molecules/s at the
best time, the histogram of the number of blocks per molecule and of block sizes, and the settings (cores,
workers, chunk size, load average before and after: other jobs on the machine slow the wall time). ``--check N``
compares N random molecules with the per-graph ``structural_blocks``. Results go to ``<out>/<dataset>.json`` and
``.md`` (``<out>`` default ``benchmarks/results/order_speed-cpu``). No preset is built, so there is no ``--set``.

The committed figures (``benchmarks/results/history/order/{moses,qm9}.json``) are reproduced by
``python benchmarks/order_speed.py --dataset moses`` and ``--dataset qm9`` (same options as then).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np

MOSES_FILES = ("train.csv.gz", "test.csv.gz")
NAME = Path(__file__).stem


def moses_available(root: Path) -> bool:
    """True when the MOSES raw files are in ``<root>/moses/raw`` or in the installed ``molsets`` wheel."""
    from graphdiff.data.molecules import _molsets_copy

    return all((root / "moses" / "raw" / f).is_file() or _molsets_copy(f) is not None for f in MOSES_FILES)


def histogram(values: np.ndarray) -> dict[str, int]:
    counts = np.bincount(values)
    return {str(i): int(c) for i, c in enumerate(counts) if c}


def stored_order(ds, max_hops: int, workers: int) -> dict:
    """Seconds to compute and store the order with the dataset's cache, then to read it back (as a later run
    does: nothing is attached to the store in between)."""
    from graphdiff.processes import order

    path = order.blocks_file(ds, max_hops)
    path.unlink(missing_ok=True)
    t = time.perf_counter()
    order.dataset_blocks(ds, max_hops=max_hops, workers=workers, attach=False)
    first = time.perf_counter() - t
    t = time.perf_counter()
    order.dataset_blocks(ds, max_hops=max_hops, attach=False)
    read = time.perf_counter() - t
    return {"compute_and_store_s": round(first, 3), "read_s": round(read, 4), "file": str(path.name),
            "file_mb": round(path.stat().st_size / 2**20, 1)}


def batch_costs(ds, batch_size: int, batches: int, max_hops: int) -> dict:
    """Per random training batch: assembling it from the store, peeling it (``blocks_from_state``), and assembling
    it with its stored blocks attached (what PARD training does once the order is stored)."""
    import torch

    from graphdiff.processes import order

    train = ds.split("train")
    rng = np.random.default_rng(1)
    picks = [rng.choice(len(train), size=batch_size, replace=False).tolist() for _ in range(batches)]
    store = train.store
    store.node_blocks = None
    for ids in picks:  # warm the page cache, so that neither timing pays for the first reads
        train.batch(ids)
    t = time.perf_counter()
    plain = [train.batch(ids) for ids in picks]
    assemble = (time.perf_counter() - t) / batches
    t = time.perf_counter()
    peeled = [order.blocks_from_state(b, max_hops=max_hops) for b in plain]
    peel = (time.perf_counter() - t) / batches
    order.dataset_blocks(train, max_hops=max_hops)
    t = time.perf_counter()
    carried = [train.batch(ids) for ids in picks]
    carry = (time.perf_counter() - t) / batches
    same = all(torch.equal(c.blocks, p) for c, p in zip(carried, peeled))
    store.node_blocks = None
    return {"batch_size": batch_size, "batches": batches, "assemble_ms": round(1000 * assemble, 2),
            "peel_ms": round(1000 * peel, 2), "assemble_with_stored_blocks_ms": round(1000 * carry, 2),
            "carried_equals_peeled": bool(same)}


def main(argv=None) -> int:
    ap = _common.parser(__doc__, NAME, overrides=False)
    ap.add_argument("--dataset", default="auto", choices=["auto", "moses", "qm9"])
    ap.add_argument("--limit", type=int, default=None, help="read only the first N rows of each raw file")
    ap.add_argument("--workers", type=int, default=1, help="processes for store_blocks (default 1: one core)")
    ap.add_argument("--prepare-workers", type=int, default=None, help="processes for preparing the dataset")
    ap.add_argument("--max-hops", type=int, default=3)
    ap.add_argument("--chunk-nodes", type=int, default=None, help="nodes per run (default: the library's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check", type=int, default=2000, help="molecules compared with structural_blocks")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[64, 128],
                    help="time peeling a training batch against carrying its stored blocks, per batch size")
    ap.add_argument("--batches", type=int, default=20, help="random batches timed per batch size")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    started = _common.machine()
    from graphdiff.processes import order

    from graphdiff.bench.offline import link_raw

    tmp = None if args.root else tempfile.mkdtemp(prefix="graphdiff-order-")
    root = Path(args.root or tmp)
    try:
        name = args.dataset if args.dataset != "auto" else ("moses" if moses_available(root) else "qm9")
        t = time.perf_counter()
        from graphdiff.data import load_dataset

        if name == "qm9":
            link_raw(root, ["qm9"], args.raw_from)
        ds = load_dataset(name, root=root, limit=args.limit, workers=args.prepare_workers)
        load_s = time.perf_counter() - t
        store = ds.store
        node_ptr = np.asarray(store.node_ptr)
        kwargs = {"workers": args.workers, "max_hops": args.max_hops}
        if args.chunk_nodes:
            kwargs["chunk_nodes"] = args.chunk_nodes
        load_before = os.getloadavg()[0]
        times, blocks = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            blocks = order.store_blocks(store, **kwargs)
            times.append(time.perf_counter() - t)
        load_after = os.getloadavg()[0]

        # per molecule: number of blocks = largest block index + 1; block sizes over all molecules
        starts = node_ptr[:-1][np.diff(node_ptr) > 0]
        num_blocks = np.maximum.reduceat(blocks.astype(np.int64), starts) + 1 if len(starts) else np.zeros(0, int)
        per_graph = np.zeros(len(store), dtype=np.int64)
        per_graph[np.diff(node_ptr) > 0] = num_blocks
        first_block = np.concatenate([[0], np.cumsum(per_graph)[:-1]])  # global id of each molecule's block 0
        sizes = np.bincount(np.repeat(first_block, np.diff(node_ptr)) + blocks.astype(np.int64))

        rng = np.random.default_rng(0)
        picks = rng.choice(len(store), size=min(args.check, len(store)), replace=False)
        mismatches = sum(
            not np.array_equal(order.structural_blocks(len(nt), ei, max_hops=args.max_hops),
                               blocks[node_ptr[g]:node_ptr[g + 1]])
            for g in picks for nt, ei, _ in [store.graph(int(g))])

        cache = stored_order(ds, args.max_hops, args.workers)
        per_batch = [batch_costs(ds, bs, args.batches, args.max_hops) for bs in args.batch_sizes]

        best = min(times)
        result = {
            "dataset": name, "molecules": len(store), "nodes": int(node_ptr[-1]),
            "edges": int(np.asarray(store.edge_ptr)[-1]),
            "store_blocks_best_s": round(best, 3), "store_blocks_median_s": round(statistics.median(times), 3),
            "store_blocks_all_s": [round(x, 3) for x in times],
            "molecules_per_s": round(len(store) / best), "load_or_prepare_s": round(load_s, 1),
            "num_blocks_histogram": histogram(num_blocks),
            "num_blocks_mean": round(float(num_blocks.mean()), 3) if len(num_blocks) else None,
            "block_size_histogram": histogram(sizes),
            "checked_against_structural_blocks": len(picks), "mismatches": int(mismatches),
            "stored_order": cache, "per_training_batch": per_batch,
            "settings": {
                "max_hops": args.max_hops, "workers": args.workers,
                "chunk_nodes": args.chunk_nodes or order._CHUNK_NODES, "limit": args.limit,
                "repeats": args.repeats, "cores": os.cpu_count(), "load_before": round(load_before, 2),
                "load_after": round(load_after, 2), "python": platform.python_version(),
                "numpy": np.__version__, "root": str(root) if args.root else "(temporary)",
            },
        }
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    lines = [f"dataset {name}: {result['molecules']} molecules, {result['nodes']} nodes, {result['edges']} edges "
             f"(loaded or prepared in {result['load_or_prepare_s']} s)",
             f"store_blocks: best {result['store_blocks_best_s']} s, median {result['store_blocks_median_s']} s "
             f"over {args.repeats} runs -> {result['molecules_per_s']} molecules/s",
             f"checked {len(picks)} molecules against structural_blocks: {result['mismatches']} mismatches",
             "blocks per molecule: " + json.dumps(result["num_blocks_histogram"]),
             "block sizes: " + json.dumps(result["block_size_histogram"]),
             "stored order: " + json.dumps(result["stored_order"]),
             *("per training batch: " + json.dumps(row) for row in result["per_training_batch"]),
             "settings: " + json.dumps(result["settings"])]
    suffix = "" if args.limit is None else f"-limit{args.limit}"
    _common.write_results(args, NAME, result, "\n".join(f"- {x}" for x in lines) + "\n", started=started,
                          stem=f"{name}{suffix}")
    return 0 if result["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(_common.run(main))
