"""What the benchmark scripts share that the package does not: their command line, the pipeline they time and
their result files. Everything else comes from the package: the offline data files
(:mod:`graphdiff.bench.offline`), the timing of training steps (:mod:`graphdiff.bench.timing`), the small CPU
networks (:mod:`graphdiff.bench.suites`), the machine record (:func:`graphdiff.bench.runner.machine`) and the
``--set`` parser (:func:`graphdiff.config.parse_overrides`).

Common options: ``--out DIR`` (default ``benchmarks/results/<script>-cpu``: one folder per script and device, as
``graphdiff bench run`` keeps one per suite and device); ``--root DIR`` (dataset root, default a fresh temporary
folder) and ``--raw-from DIR`` (the folder of offline copies placed under the root; default ``$GRAPHDIFF_RAW``,
else the shared datasets folder) where a script reads standard files; ``--set KEY=VALUE`` (repeatable) where a
script builds a pipeline from a preset. Such a pipeline is built as ``graphdiff bench run`` builds it on a CPU:
the small network of ``CPU_MODELS`` for the preset's model (GDSS keeps its own) and the batch size of
``CPU_BATCH`` for its dataset, then the ``--set`` values on top (``--set train.batch_size=64``,
``--set train.amp=true``, ``--set model.gradient_checkpointing=true``).

Results: ``<out>/<name>.json`` (the script's rows, the command, the machine at the start, the load average at the
end) and ``<out>/<name>.md`` (a table, then the command and the machine). Nothing here imports torch or graphdiff
at import time, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
if (REPO / "graphdiff" / "__init__.py").is_file() and str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))  # the checkout's package, not another installed copy


def parser(doc: str, name: str, *, presets: list[str] | None = None, root: bool = True, raw_from: bool = True,
           overrides: bool = True) -> argparse.ArgumentParser:
    """The parser of script ``name`` with the common options (a script adds its own to it).

    Args:
        doc: the script's docstring: its first paragraph is the description, the usage block follows it.
        presets: default of ``--presets`` (no ``--presets`` option when ``None``).
        root, raw_from: add ``--root`` / ``--raw-from``; overrides: add ``--set``.
    """
    p = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=doc.split("\n\n")[0],
                                epilog="See the module docstring of the script for what it measures and how.")
    if presets is not None:
        p.add_argument("--presets", nargs="+", default=presets, help=f"presets to time (default: {' '.join(presets)})")
    if overrides:
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a preset value on every pipeline (after the small CPU network and batch), "
                            "e.g. --set train.batch_size=64 --set train.amp=true")
    if root:
        p.add_argument("--root", default=None, help="dataset root (default: a fresh temporary folder)")
    if raw_from:
        p.add_argument("--raw-from", default=None,
                       help="folder with the offline copies of the standard files, linked under the root "
                            "(default: $GRAPHDIFF_RAW, else the shared datasets folder)")
    p.add_argument("--out", default=None, help=f"results folder (default: benchmarks/results/{name}-cpu)")
    return p


def out_dir(args, name: str, device: str = "cpu") -> Path:
    """``--out``, else ``benchmarks/results/<name>-<device>``."""
    return Path(args.out) if getattr(args, "out", None) else RESULTS / f"{name}-{device}"


_TEMPORARY_ROOTS: list[Path] = []


def data_root(args, names, prefix: str = "graphdiff-bench") -> Path:
    """``--root`` (else a fresh temporary folder, removed when :func:`run` ends) with the offline copies of
    ``names`` linked into it."""
    from graphdiff.bench.offline import link_raw

    if getattr(args, "root", None):
        root = Path(args.root)
    else:
        root = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        _TEMPORARY_ROOTS.append(root)
    link_raw(root, names, getattr(args, "raw_from", None))
    return root


def run(main) -> int:
    """A script's exit status: ``main()``'s, or 2 with one ``error: ...`` line for a graphdiff error (a missing
    file, a bad option value), as the ``graphdiff`` command does; the temporary data roots are removed either way."""
    from graphdiff.errors import GraphdiffError

    try:
        return int(main() or 0)
    except GraphdiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for root in _TEMPORARY_ROOTS:
            shutil.rmtree(root, ignore_errors=True)


def user_overrides(args) -> dict:
    """The ``--set`` values as one nested dict."""
    from graphdiff.config import parse_overrides

    return parse_overrides(getattr(args, "set", None) or [])


def preset_overrides(preset: str, user: dict | None = None) -> dict:
    """The overrides a script builds ``preset`` with on a CPU: the small network of ``CPU_MODELS`` for the
    preset's model (none for GDSS), the batch size of ``CPU_BATCH`` for its dataset (64 if absent), then ``user``."""
    from graphdiff.bench.suites import CPU_BATCH, CPU_MODELS
    from graphdiff.config import load_preset, merge

    cfg = load_preset(preset, user)  # the user's values checked once, against the preset
    over: dict = {"train": {"batch_size": CPU_BATCH.get(cfg.dataset, 64)}}
    if cfg.model["name"] in CPU_MODELS:
        over["model"] = dict(CPU_MODELS[cfg.model["name"]])
    return merge(over, user or {})


def timing_pipeline(preset: str, args, root: Path):
    """``(pipe, train split, batch size, row)`` for timing ``preset`` (built with :func:`preset_overrides` and
    ``--set``). PARD's order is prepared here, as the trainer does before its first step, so that no timed step
    computes it. ``row`` starts the script's result row."""
    from graphdiff.pipeline import GraphDiffusionPipeline

    over = preset_overrides(preset, user_overrides(args))
    pipe = GraphDiffusionPipeline.from_preset(preset, root=root, overrides=over)
    ds = pipe._dataset.split("train")
    if hasattr(pipe.process, "prepare_dataset"):
        pipe.process.prepare_dataset(ds)
    bs = pipe.config.train.batch_size
    return pipe, ds, bs, {"preset": preset, "batch_size": bs, "train_graphs": len(ds), "overrides": over}


def loss_module(pipe, variant: dict | None = None):
    """What the trainer computes the loss through, for ``pipe``'s train settings with ``variant["train"]`` on top:
    the denoiser through ``torch.compile`` with ``compile``, under bf16 autocast with ``amp`` (the trainer's order);
    ``None`` for the plain denoiser (the default of :func:`graphdiff.bench.timing.time_train_steps`)."""
    train = {"amp": pipe.config.train.amp, "compile": pipe.config.train.compile,
             **((variant or {}).get("train") or {})}
    module = pipe.denoiser
    if train["compile"]:
        from graphdiff.train.compile import compile_module

        module = compile_module(module)
    if train["amp"]:
        from graphdiff.train.amp import AutocastForward

        module = AutocastForward(module, next(pipe.denoiser.parameters()).device.type)
    return None if module is pipe.denoiser else module


def each(items, fn) -> list:
    """``[fn(item) for item in items]``, announcing each item."""
    rows = []
    for item in items:
        print(f"== {item}", flush=True)
        rows.append(fn(item))
    return rows


def machine() -> dict:
    """:func:`graphdiff.bench.runner.machine`: device, threads, cores, load average, versions, git commit."""
    from graphdiff.bench.runner import machine as _machine

    return _machine()


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_results(args, name: str, payload: dict, markdown: str | None = None, *, started: dict | None = None,
                  stem: str | None = None, device: str = "cpu") -> Path:
    """Write ``<out>/<stem>.json`` (``payload`` with the command, the machine at the start, the time and load
    average at the end) and, with ``markdown``, ``<out>/<stem>.md`` (the table, the command, the machine); returns
    the JSON file. ``stem`` defaults to ``name``; ``started``: :func:`machine` taken when the script started
    (else now)."""
    out = out_dir(args, name, device)
    out.mkdir(parents=True, exist_ok=True)
    m = started or machine()
    meta = {"command": command(), "machine": m, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}
    path = out / f"{stem or name}.json"
    path.write_text(json.dumps({**meta, **payload}, indent=1, default=str) + "\n")
    if markdown is not None:
        text = (markdown.rstrip("\n") + f"\n\n`{meta['command']}`\n\ngraphdiff {m['graphdiff']} (commit "
                f"{m['git_commit'] or 'unknown'}), torch {m['torch']}, {m['device']}, {m['torch_threads']} torch "
                f"threads, {m['cpu_count']} cores, load average {m['load_average'][0]} at the start, "
                f"{meta['load_average_at_end'][0]} at the end.\n")
        path.with_suffix(".md").write_text(text)
        print(text, flush=True)
    print(f"wrote {path}", flush=True)
    return path


def _timed_worker(target, index, count, payload, barrier, queue, received):
    import torch

    torch.set_num_threads(1)
    run = target(index, count, payload)  # prepares (loads, compiles, warms up) and returns the timed call
    barrier.wait()
    t = time.perf_counter()
    result = run()
    queue.put((index, result, time.perf_counter() - t))
    received.wait()  # tensors travel as shared memory: stay alive until the caller has them


def in_processes(target, count: int, payload) -> tuple[list, float]:
    """Time ``count`` one-thread worker processes started together: ``target(index, count, payload)`` (a function
    of the calling script, run in each worker) prepares and returns a callable; after every worker has prepared,
    all call theirs at once. Returns the callables' results in worker order and the slowest worker's seconds."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue, received = ctx.Barrier(count), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_timed_worker, args=(target, i, count, payload, barrier, queue, received))
             for i in range(count)]
    for p in procs:
        p.start()
    got = sorted((queue.get() for _ in procs), key=lambda g: g[0])
    received.set()
    for p in procs:
        p.join()
    return [g[1] for g in got], max(g[2] for g in got)
