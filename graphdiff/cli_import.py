"""``graphdiff import-checkpoint``: the papers' released checkpoints as graphdiff checkpoint folders.

    graphdiff import-checkpoint --format gdss gdss_qm9.pth --out imported/gdss-qm9 [--dataset NAME] [--root DIR]
    graphdiff import-checkpoint --format digress|defog model.ckpt --out DIR
"""

from __future__ import annotations

from pathlib import Path


CARD_FILES = ("README.md", "metrics.json", "samples.png")  # a packed model's card, beside its checkpoint files


def cmd_import_checkpoint(args) -> int:
    from .convert.checkpoints import import_checkpoint

    from .checks import check_output_folder
    from .errors import ConfigError

    out = check_output_folder(args.out)
    if (out / "config.json").is_file():  # another model: its weights would go, its card would stay and mislead
        if not args.overwrite:
            raise ConfigError(f"--out {out} holds a model; --overwrite replaces it (its card too), or choose another "
                              "folder")
    s = import_checkpoint(args.file, args.format, args.out, dataset=args.dataset, root=args.root)
    for stale in CARD_FILES:  # what `models pack` wrote about the model that was replaced
        (out / stale).unlink(missing_ok=True)
    knobs = {k: v for k, v in s["sample"].items() if k not in ("steps", "use_ema", "num_samples")}
    print(f"imported {args.file} ({s['format']}, {s['dataset']}): {s['tensors']} tensors"
          + (f", {len(s['dropped_unused'])} left out as unused by the authors' forward pass"
             if s["dropped_unused"] else "") + (", with EMA weights" if s["ema"] else ""))
    counts = s.get("node_counts", f"{s['graphdiff_dataset']} (train)")
    print(f"node categories: {', '.join(s['node_categories'])}; node counts from {counts}")
    print(f"sampler: {', '.join(f'{k}={v}' for k, v in knobs.items())}; {s['sample']['steps']} steps"
          + ("; EMA weights" if s["sample"]["use_ema"] else ""))
    import safetensors.torch

    from .train.checkpoint import count_subnormal

    folder = Path(s["out"])
    used = folder / ("ema.safetensors" if s["sample"].get("use_ema") and (folder / "ema.safetensors").is_file()
                     else "model.safetensors")  # the weights sampling reads
    sub, total = count_subnormal(safetensors.torch.load_file(str(used)).values())
    if sub:
        print(f"subnormal weights: {sub:,} of {total:,} (below float32's smallest normal; set to zero when the "
              "checkpoint is loaded for sampling, which spares CPUs their slow subnormal arithmetic)")
    print(f"checkpoint: {s['out']}  (graphdiff sample --model {s['out']} ...)")
    return 0


def add_import_commands(sub) -> None:
    """Register ``import-checkpoint`` on the ``graphdiff`` subparsers."""
    from .convert.checkpoints import FORMATS

    q = sub.add_parser("import-checkpoint", help="convert a paper's released checkpoint into a graphdiff checkpoint")
    q.add_argument("file", help="the authors' checkpoint (.pth for GDSS, .ckpt for DiGress/DeFoG)")
    q.add_argument("--format", required=True, choices=FORMATS, help="which code wrote the file")
    q.add_argument("--out", required=True, help="checkpoint folder to write")
    q.add_argument("--overwrite", action="store_true", help="replace a model already in --out (and its card)")
    q.add_argument("--dataset", default=None,
                   help="our dataset whose train split gives the node-count histogram (default: the checkpoint's)")
    q.add_argument("--root", default=None, help="dataset root (default $GRAPHDIFF_DATA or ~/.cache/graphdiff)")
    q.set_defaults(func=cmd_import_checkpoint)
