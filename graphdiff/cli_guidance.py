"""``graphdiff train-regressor``: a property regressor on a model's noisy states, for ``--guide regressor``.

    graphdiff train-regressor --model qm9-defog --target qed --out regressors/qm9-qed --max-minutes 10
    graphdiff sample --model qm9-defog -n 512 --guide regressor --regressor regressors/qm9-qed --scale 5 --out q.smi
"""

from __future__ import annotations

from .errors import ConfigError


def cmd_train_regressor(args) -> int:
    from .cli_model import _overrides
    from .guidance.minority import TARGET, minority_scores
    from .guidance.regressor import DEFAULT_SIZES, Regressor, train_regressor
    from .guidance.rewards import parse_reward_args
    from .pipeline import GraphDiffusionPipeline

    sizes = _overrides(args.set)
    bad = set(sizes) - {"model"} or set(sizes.get("model", {})) - set(DEFAULT_SIZES)
    if bad:
        raise ConfigError(f"train-regressor --set takes model.KEY=VALUE with KEY in {sorted(DEFAULT_SIZES)}; got "
                          f"{sorted(bad)}")
    from .checks import check_at_least, check_output_folder

    check_at_least(args, {"--max-steps": 1, "--batch-size": 1, "--limit": 1, "--seed": 0, "--threads": 1})
    for flag, value in (("--lr", args.lr), ("--max-minutes", args.max_minutes)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
    check_output_folder(args.out)
    Regressor.check_folder(args.out)  # a model's folder or a run's checkpoint: refused before any work
    torch_threads(args.threads)
    pipe = GraphDiffusionPipeline.from_pretrained(args.model)
    reg = train_regressor(pipe, args.target, dataset=args.dataset, root=args.root, out=args.out,
                          max_steps=args.max_steps, max_minutes=args.max_minutes, batch_size=args.batch_size,
                          lr=args.lr, limit=args.limit, sizes=sizes.get("model"), seed=args.seed,
                          reward_args=parse_reward_args(args.reward_arg or []), progress=not args.quiet,
                          scorer=minority_scores if args.target == TARGET else None)
    use = "minority" if args.target == TARGET else "regressor"
    print(f"regressor: {args.out} (graphdiff sample --model {args.model} --guide {use} --regressor {args.out} "
          f"...); held-out MAE {reg.info['held_out_mae_clean']:.4g} on clean graphs, "
          f"{reg.info['held_out_mae_mean']:.4g} for the mean")
    return 0


def torch_threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise ConfigError(f"--threads must be a positive integer, got {n}")
        import torch

        torch.set_num_threads(n)


def add_guidance_commands(sub) -> None:
    """Register ``train-regressor`` on the ``graphdiff`` subparsers."""
    r = sub.add_parser("train-regressor", help="train a property regressor on a model's noisy states "
                                               "(for sample --guide regressor)")
    r.add_argument("--model", required=True, help="the model to guide: bundled name, folder, URL or hf: id")
    r.add_argument("--target", required=True,
                   help="a graph-level column of the data, a property it keeps (qm9_3d: gap, homo, lumo, mu, "
                        "alpha, ...), a reward name (qed, logp, sa, n_nodes, ...) or 'minority' (the model's own "
                        "minority score, for --guide minority)")
    r.add_argument("--reward-arg", action="append", metavar="KEY=VALUE", default=None,
                   help="argument of a reward target, e.g. target=CCO (repeatable)")
    r.add_argument("--out", required=True, help="folder to write (regressor.json, model.safetensors)")
    r.add_argument("--dataset", default=None, help="training data (default: the model's own dataset, with the "
                                                  "options it was trained with)")
    r.add_argument("--root", default=None, help="dataset root")
    r.add_argument("--max-steps", type=int, default=None)
    r.add_argument("--max-minutes", type=float, default=None)
    r.add_argument("--batch-size", type=int, default=128)
    r.add_argument("--lr", type=float, default=3e-4)
    r.add_argument("--limit", type=int, default=None, help="use at most this many training graphs (seeded)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=None, help="torch threads")
    r.add_argument("--set", action="append", metavar="model.KEY=VALUE", help="network size, e.g. model.n_layers=4")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_train_regressor)
