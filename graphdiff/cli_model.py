"""``graphdiff train | finetune | sample | demo``: the model-side subcommands (registered by :mod:`graphdiff.cli`;
``sample`` runs in :mod:`graphdiff.cli_sample`).

    graphdiff train --preset gdss-qm9 [--out runs/qm9] [--max-minutes 30] [--resume] [--set train.lr=0.001]
    graphdiff sample --model runs/qm9 [-n 1000] [--steps 500] [--sampler pc|em|s4|ode] [--seed 0] [--set snr=0.2]
                     [--shard i/K | --workers K] [--compile] --out qm9.smi
    graphdiff sample --model runs/digits --guide self --observed digit.npy --observed-mask bottom --out filled.png
                     (image inpainting / series completion by self-guidance: graphdiff.cli_observe)
    torchrun --nproc_per_node K -m graphdiff.cli sample ...   (each process samples its share; rank 0 writes)
    graphdiff demo [--out demo] [-n 1000] [--model qm9-defog]    (--train [--minutes 2]: train from scratch)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


from .errors import ConfigError, GraphdiffError, TrainingError
from .checks import check_at_least, check_output_folder


def _overrides(items) -> dict:
    from .config import parse_overrides

    return parse_overrides(items)


def _record_command(out: Path, args) -> None:
    """Append the command line to ``<out>/command.txt`` when the run folder exists: a run folder remembers how it
    was made (model cards read it; a resumed run adds a line). Only rank 0 writes under torchrun."""
    import shlex

    if int(os.environ.get("RANK", "0")) != 0 or not out.is_dir():
        return
    # --overwrite started the run afresh: the commands of the run it replaced are not this run's
    with open(out / "command.txt", "w" if getattr(args, "overwrite", False) else "a", encoding="utf-8") as fh:
        fh.write("graphdiff " + " ".join(shlex.quote(a) for a in args.argv) + "\n")


def _trained(exc: BaseException) -> bool:
    """Whether a train / finetune command that raised ``exc`` had trained (interrupted, or stopped by a
    non-finite loss), so its command belongs in ``command.txt``; input refused before training did not."""
    return isinstance(exc, TrainingError) or not isinstance(exc, GraphdiffError)


def cmd_train(args) -> int:
    from .config import load_preset, merge
    from .pipeline import GraphDiffusionPipeline

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be > 0, got {args.max_minutes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {args.max_steps}")
    over = _overrides(args.set)
    if args.dataset:
        over["dataset"] = args.dataset
    if _data_options(args):
        over = merge(over, {"dataset_options": _data_options(args)})
    cfg = load_preset(args.preset, over)  # read and checked once, before any data work; everything reads it
    if args.max_steps is not None:  # a step budget, not cut short by the preset's epoch count (an epoch >= 1 step)
        epochs = {} if "epochs" in (over.get("train") or {}) else {"epochs": max(cfg.train.epochs, args.max_steps)}
        over = merge(over, {"train": {"max_steps": args.max_steps, **epochs}})
        cfg = load_preset(args.preset, over)
    out = check_output_folder(args.out or f"runs/{cfg.name}")
    from .train.run_folder import check_fresh_run_folder, check_resume_or_overwrite

    check_resume_or_overwrite(args.resume, args.overwrite)
    if not args.resume and not args.overwrite:
        check_fresh_run_folder(out)  # refused before the command is recorded
    try:
        pipe = GraphDiffusionPipeline.fit(args.dataset, preset=cfg, out=out, root=args.root,
                                          max_minutes=args.max_minutes, resume=args.resume, progress=not args.quiet,
                                          overwrite=args.overwrite)
    except BaseException as exc:  # a run that trained and stopped is recorded; input refused before training not
        if _trained(exc):
            _record_command(out, args)
        raise
    _record_command(out, args)
    from .train import distributed as D

    D.cleanup()  # under torchrun: every rank finished training; leave the process group together (no-op otherwise)
    s = pipe.summary
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    loss = "" if s["loss"] is None else f"; final loss {s['loss']:.4g}"
    print(f"trained {_steps_done(s)} ({s['epochs']} epochs, stopped by {s['stopped_by']}) in {s['seconds']:.0f} s"
          f"{loss}")
    print(f"checkpoint: {s['checkpoint']}")
    return 0


def _steps_done(s: dict) -> str:
    """``"300 steps"``, or after a resume ``"to step 464 (314 in this call)"``: the seconds printed beside it are
    this call's."""
    this = s.get("steps_this_call", s["steps"])
    return f"{s['steps']} steps" if this == s["steps"] else f"to step {s['steps']} ({this} in this call)"


def add_smiles_column(parser) -> None:
    parser.add_argument("--smiles-column", default=None, help="custom .csv: the SMILES column (default: 'smiles')")


def _data_options(args) -> dict:
    """The dataset options the command line gives (``--smiles-column``)."""
    return {"smiles_column": args.smiles_column} if getattr(args, "smiles_column", None) else {}


def cmd_finetune(args) -> int:
    from .config import load_preset, merge
    from .pipeline import GraphDiffusionPipeline

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be > 0, got {args.max_minutes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {args.max_steps}")
    check_at_least(args, {"--lora": 1})
    check_output_folder(args.out)
    from .train.run_folder import check_fresh_run_folder, check_resume_or_overwrite

    check_resume_or_overwrite(args.resume, args.overwrite)
    if not args.resume and not args.overwrite:
        check_fresh_run_folder(Path(args.out))
    if args.base is None:  # the bundled base for the data's kind: molecules or unlabelled graphs
        from .data import load_dataset
        from .finetune import DEFAULT_BASE

        kind = load_dataset(args.dataset, root=args.root, **_data_options(args)).schema.kind
        args.base = DEFAULT_BASE[kind]
        print(f"base model: {args.base} (the default for {kind}s; --from chooses another)")
    base = GraphDiffusionPipeline.from_pretrained(args.base)
    over = {}
    if args.preset:  # its training, sampling and fine-tuning settings; the base fixes process and network
        cfg = load_preset(args.preset)
        if cfg.process["name"] != base.process.name:
            raise ConfigError(f"--preset {args.preset} is a {cfg.process['name']} preset but the base model "
                              f"{args.base} is {base.process.name}")
        # not its from-scratch rate and warm-up (finetune.lr / finetune.warmup_steps are the fine-tune's) nor its
        # budget (the fine-tune's own: --max-minutes, --max-steps)
        train = {k: v for k, v in cfg.train.to_dict().items()
                 if k not in ("lr", "warmup_steps", "epochs", "max_steps", "max_minutes")}
        over = {"train": train, "finetune": cfg.finetune.to_dict()}
    over = merge(over, _overrides(args.set))
    out = check_output_folder(args.out)
    try:
        pipe = base.finetune(args.dataset, out=out, root=args.root, max_minutes=args.max_minutes,
                             max_steps=args.max_steps, overrides=over, freeze_pattern=args.freeze, lora=args.lora,
                             resume=args.resume, progress=not args.quiet, base_name=str(args.base),
                             overwrite=args.overwrite, dataset_options=_data_options(args))
    except BaseException as exc:
        if _trained(exc):
            _record_command(out, args)
        raise
    _record_command(out, args)
    s = pipe.summary
    rec = pipe.config.finetune.lineage[-1]
    print(f"fine-tuned {args.base} on {rec['data']}: {_steps_done(s)} ({s['stopped_by']}) in {s['seconds']:.0f} s, "
          + (f"{rec['trainable_parameters']:,} adapter parameters trained, merged into the model's "
             f"{rec['parameters']:,} ({rec['method']})" if rec["method"].startswith("LoRA") else
             f"{rec['trainable_parameters']:,} of {rec['parameters']:,} parameters trained ({rec['method']})")
          + (f"; new node categories {', '.join(rec['new_node_categories'])}" if rec["new_node_categories"] else ""))
    print(f"model: {s['model']} (load with GraphDiffusionPipeline.from_pretrained or --model {out})")
    return 0


def cmd_demo(args) -> int:
    if args.minutes <= 0:
        raise ConfigError(f"--minutes must be > 0, got {args.minutes}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be a positive integer, got {args.steps}")
    if args.n < 1:
        raise ConfigError(f"-n must be a positive integer, got {args.n}")
    check_at_least(args, {"--seed": 0})
    if args.train:
        from .demo import run_demo

        run_demo(out=Path(args.out), minutes=args.minutes, root=args.root, progress=not args.quiet, steps=args.steps)
        return 0
    from .demo_molecules import run_molecule_demo

    run_molecule_demo(out=Path(args.out), model=args.model, n=args.n, steps=args.steps, seed=args.seed,
                      progress=not args.quiet)
    return 0


def add_model_commands(sub) -> None:
    from .samplers import SAMPLERS

    t = sub.add_parser("train", help="train a model from a preset (see graphdiff/presets/)")
    t.add_argument("--preset", required=True,
                   help="preset name (e.g. gdss-qm9; tsdiff-wineind is edm-tsdiff-wineind: the process may be left "
                   "out where one preset remains) or a YAML file")
    t.add_argument("--dataset", default=None, help="dataset name or custom file (default: the preset's)")
    add_smiles_column(t)
    t.add_argument("--out", default=None, help="run folder (default runs/<preset>)")
    t.add_argument("--max-minutes", type=float, default=None, help="wall-clock training budget")
    t.add_argument("--max-steps", type=int, default=None,
                   help="optimizer steps (train.max_steps; the preset's epoch count does not cut it short)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run folder that holds a run (its checkpoint and log are replaced)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset value, e.g. train.lr=1e-3")
    t.add_argument("--root", default=None, help="dataset root")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    f = sub.add_parser("finetune", help="fine-tune a trained or bundled model on new data")
    f.add_argument("--from", dest="base", default=None,
                   help="base model: bundled name, folder, URL or hf: id (default: qm9-defog for molecules, "
                        "lggm-base for graphs)")
    f.add_argument("--dataset", required=True, help="dataset name or custom file")
    add_smiles_column(f)
    f.add_argument("--out", required=True, help="fine-tune folder (model/ and checkpoint/)")
    f.add_argument("--preset", default=None, help="take train/finetune settings from this preset (same process)")
    f.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    f.add_argument("--max-steps", type=int, default=None, help="optimizer steps")
    f.add_argument("--freeze", default=None, metavar="PATTERN", help="regex of parameter names not to train")
    f.add_argument("--lora", type=int, default=None, metavar="RANK", help="train LoRA adapters of this rank (peft)")
    f.add_argument("--resume", action="store_true", help="continue an interrupted fine-tune in --out")
    f.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a fine-tune")
    f.add_argument("--set", action="append", metavar="KEY=VALUE", help="e.g. finetune.lr=1e-4, train.batch_size=64")
    f.add_argument("--root", default=None, help="dataset root")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_finetune)

    s = sub.add_parser("sample", help="sample from a trained model")
    s.add_argument("--model", required=True, help="bundled model name, checkpoint folder or run folder")
    s.add_argument("-n", type=int, default=None, help="number of samples (default: the model's sample.num_samples)")
    s.add_argument("--steps", type=int, default=None, help="reverse steps (default: the preset's)")
    names = sorted({k for table in SAMPLERS.values() for k in table})
    s.add_argument("--sampler", default=None, choices=names, help="default: the preset's")
    s.add_argument("--seed", type=int, default=None, help="default: the model's sample.seed (0)")
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a sampler knob, e.g. snr=0.2 (pc) or prefix_cache=false (block)")
    s.add_argument("--shard", default=None, metavar="I/K",
                   help="sample only shard I of K (contiguous; the K files concatenated = one unsharded run)")
    s.add_argument("--workers", type=int, default=None, metavar="K",
                   help="sample in K one-thread processes on CPU, each a shard; one file, the same samples")
    s.add_argument("--device", default="cpu")
    s.add_argument("--compile", action="store_true",
                   help="sample through torch.compile of the denoiser (same samples; compiling takes about a "
                        "minute on a 2-core CPU, so it pays off from about 10,000 molecules)")
    s.add_argument("--out", required=True,
                   help=".smi (molecules), .sdf / .xyz (3D molecules), .jsonl (edge lists), .png or .npy (images); "
                        "a series completed with --guide self: .csv or .npy")
    s.add_argument("--cond", action="append", metavar="NAME=VALUE", default=None,
                   help="a condition of a conditioned model, e.g. domain=planar for lggm-base (repeatable; a "
                        "numeric condition takes a number; unknown names and values are listed)")
    s.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight with --cond (logits (1 + W) cond - W uncond; default 0)")
    s.add_argument("--nodes", default=None, metavar="N|N1,N2,...",
                   help="nodes per graph: one size for every sample or one per sample (default: drawn from the "
                        "training sizes)")
    s.add_argument("--guide", default=None,
                   choices=["best_of_n", "svdd", "noise_search", "regressor", "minority", "faros", "self"],
                   help="steer toward --reward; faros: switch sensitive node categories; self: complete "
                        "--observed (image inpainting, series windows)")
    s.add_argument("--observed", default=None, metavar="FILE",
                   help="self: the known values (images .npy/.png, series .csv/.npy; NaN = unknown)")
    s.add_argument("--observed-mask", default=None, metavar="FILE|bottom|top|left|right",
                   help="self: .npy of known entries (nonzero = known), or the image half to fill in")
    s.add_argument("--variant", default=None, choices=["mse", "quantile"],
                   help="self: observation likelihood (default mse for images, quantile for series)")
    s.add_argument("--replace", action=argparse.BooleanOptionalAction, default=None,
                   help="self: feed the network the observed values noised to each step's level (default: the "
                        "model's, else no)")
    s.add_argument("--reward", default=None, help="reward name (qed, sa, logp, similarity, ...) or module:function")
    s.add_argument("--reward-arg", action="append", metavar="KEY=VALUE", default=None,
                   help="reward argument, e.g. target=CCO (repeatable)")
    s.add_argument("--candidates", type=int, default=None,
                   help="candidates per sample (best_of_n: N) or per step (svdd, noise_search: M); default 10")
    s.add_argument("--alpha", type=float, default=None, help="svdd: selection temperature (0, the default: argmax)")
    s.add_argument("--paths", type=int, default=None, help="noise_search: paths kept per sample (K, default 4)")
    s.add_argument("--regressor", default=None,
                   help="regressor / minority: folder made by graphdiff train-regressor; svdd: a value network "
                        "(SVDD-MC)")
    s.add_argument("--target-value", type=float, default=None, help="regressor: steer toward this property value")
    s.add_argument("--direction", default=None, choices=["max", "min"],
                   help="regressor: without --target-value, raise (max, the default) or lower the property")
    s.add_argument("--scale", type=float, default=None,
                   help="regressor, minority, self: guidance strength (default 1; self: the model's stored scale)")
    s.add_argument("--switch-time", type=float, default=None,
                   help="faros: switch the sensitive node categories at this fraction of the trajectory (0.5)")
    s.add_argument("--fraction", type=float, default=None,
                   help="faros: share of each graph's nodes switched (default 1: all redrawn, equal groups)")
    s.add_argument("--quiet", action="store_true")
    from .cli_sample import cmd_sample

    s.set_defaults(func=cmd_sample)

    d = sub.add_parser("demo", help="sample 1,000 molecules from the bundled QM9 model, score and draw them "
                                    "(--train: train a small GDSS model on generated graphs instead)")
    d.add_argument("--out", default="demo", help="folder for the samples, the PNG and results.json")
    d.add_argument("--model", default="qm9-defog", help="bundled molecule model (default qm9-defog)")
    d.add_argument("-n", type=int, default=1000, help="molecules to sample (default 1000)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--train", action="store_true",
                   help="the two-minute train-from-scratch demo (GDSS on generated community graphs)")
    d.add_argument("--minutes", type=float, default=2.0, help="--train: training budget (default 2)")
    d.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the model's; --train: the preset's 300)")
    d.add_argument("--root", default=None, help="dataset root")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
