"""What the training-speed benchmarks (``compile_speed.py``, ``amp_speed.py``, ``grouping.py``) share: their
command-line options, the pipeline, training split and batch size of a preset, and the main loop."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import discrete
from _offline import link_raw
from _timing import run_and_write


def speed_parser(doc: str, presets: list[str], out: str, *, batch_help: str | None = None) -> argparse.ArgumentParser:
    """``--presets --batch --steps --cpu-model --root --out``; a script adds its own options to the result."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--presets", nargs="*", default=presets)
    p.add_argument("--batch", type=int, default=None,
                   help=batch_help or "default: discrete.CPU_BATCH per dataset with --cpu-model, else the preset's")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--cpu-model", action="store_true")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default=out)
    return p


def speed_main(p: argparse.ArgumentParser, argv, run_preset, markdown, name: str, setup=None, **meta) -> int:
    """Parse, call ``setup(args)`` if given, link the offline files into the dataset root (a fresh temporary one by
    default), run every preset and write ``<out>/<name>.json`` and ``.md`` (plus ``meta``; a callable value is
    called with the parsed arguments)."""
    args = p.parse_args(argv)
    if setup is not None:
        setup(args)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix=f"{name}-bench-"))
    link_raw(root, {x.split("-", 1)[1] for x in args.presets})
    run_and_write(args.presets, run_preset, args, root, args.out, name, markdown,
                  **{k: (v(args) if callable(v) else v) for k, v in meta.items()})
    return 0


def preset_for_timing(preset: str, args, root: Path, *, cpu_batch_always: bool = False):
    """``(pipe, train split, batch size, row)`` for timing ``preset``: with ``--cpu-model`` the small network of
    ``discrete.CPU_MODELS`` (GDSS keeps its own); the batch is ``--batch``, else ``discrete.CPU_BATCH`` of the
    dataset (with ``--cpu-model`` or ``cpu_batch_always``), else the preset's. PARD's order is prepared once here,
    so no timed step computes it. ``row`` starts the result row (preset, batch, graphs, model)."""
    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.train import TrainConfig

    over = {}
    if args.cpu_model:
        model = {"pard": "ppgn_transformer", "gdss": None}.get(preset.split("-")[0], "graph_transformer")
        if model:
            over["model"] = dict(discrete.CPU_MODELS[model])
    pipe = GraphDiffusionPipeline.from_preset(preset, root=root, overrides=over)
    ds = pipe._dataset.split("train")
    if hasattr(pipe.process, "prepare_dataset"):
        pipe.process.prepare_dataset(ds)
    dataset = preset.split("-", 1)[1]
    bs = args.batch or (discrete.CPU_BATCH.get(dataset, 64) if args.cpu_model or cpu_batch_always
                        else TrainConfig.from_dict(pipe.config["preset"]["train"]).batch_size)
    row = {"preset": preset, "batch_size": bs, "train_graphs": len(ds),
           "model": "cpu model " + json.dumps(over["model"]) if over.get("model") else "preset"}
    return pipe, ds, bs, row
