"""``graphdiff sample``: draw samples from a trained or bundled model and write them by the file's suffix.

    graphdiff sample --model runs/qm9 [-n 1000] [--steps 500] [--sampler pc|em|s4|ode] [--seed 0] [--set snr=0.2]
                     [--shard i/K | --workers K] [--compile] --out qm9.smi
    graphdiff sample --model qm9_3d-eqgat_diff -n 100 --out mols.sdf      (3D: .sdf, .xyz, .png)
    torchrun --nproc_per_node K -m graphdiff.cli sample ...   (each process samples its share; rank 0 writes)

Guided sampling (``--guide``) is read here and run by :mod:`graphdiff.guidance`; observation self-guidance
(``--guide self``: inpainting, series completion) by :mod:`graphdiff.cli_observe`. The parser is
:func:`graphdiff.cli_model.add_model_commands`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .checks import check_output_file
from .cli_conditions import condition_kwargs, graph_validity
from .errors import ConfigError


def write_samples(samples, out: Path, schema) -> Path:
    """Write samples by suffix: ``.smi`` (SMILES, empty line = invalid), ``.jsonl`` (edge lists), ``.png``; 3D
    molecules also ``.sdf`` and ``.xyz`` (an empty record where no molecule could be built); image models also
    ``.npy`` (``[n, C, H, W]`` in the data's value range)."""
    from .adapters import fixed_graph_spec
    from .convert.networkx import to_networkx

    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if samples.pos is not None and samples.schema is not None:
        schema = samples.schema  # a 3D process decodes into its own token schema (every element-charge pair)
    if suffix in (".sdf", ".xyz"):
        if samples.pos is None:
            raise ConfigError(f"--out {out.name}: .sdf and .xyz need a 3D model (coordinates); this one has none")
        from .convert.rdkit3d import to_mols3d, write_sdf, write_xyz

        mols = to_mols3d(samples, schema, sanitize=False)
        (write_sdf if suffix == ".sdf" else write_xyz)(mols, out)
    elif suffix == ".npy":  # images (checked by the caller): the arrays, in the data's value range
        from .adapters import adapter_from_schema

        np.save(out, adapter_from_schema(schema).from_state(samples).numpy())
    elif suffix == ".png" and fixed_graph_spec(schema) is not None:  # images: a PNG grid of the samples
        from .adapters import adapter_from_schema, save_image_grid

        grid = adapter_from_schema(schema)
        if not hasattr(grid, "from_state") or getattr(grid, "kind", "") != "grid":
            raise ConfigError(f"--out {out.name}: PNG grids are for image models; this one is {grid.kind!r}")
        save_image_grid(grid.from_state(samples), out, value_range=grid.value_range)
    elif suffix == ".png" and samples.pos is not None:
        from .convert.rdkit3d import to_mols3d
        from .viz3d import draw_molecules_3d

        draw_molecules_3d([m for m in to_mols3d(samples, schema, sanitize=False)][:16], out)
    elif suffix == ".smi":
        from .convert.rdkit import to_smiles

        smiles = to_smiles(samples, schema)
        out.write_text("".join(f"{s or ''}\n" for s in smiles))
    elif suffix == ".jsonl":
        graphs = to_networkx(samples, schema)
        with open(out, "w") as fh:
            for g in graphs:
                edges = [[int(u), int(v)] for u, v in g.edges()]
                rec = {"num_nodes": g.number_of_nodes(), "edges": edges}
                molecule = schema.kind == "molecule"  # atoms and bonds are always named, one atom type or not
                if schema.num_node_types > 1 or molecule:
                    rec["node_labels"] = [g.nodes[v].get("label") for v in g.nodes()]
                if schema.num_edge_types > 2 or molecule:
                    rec["edge_labels"] = [g.edges[u, v].get("label") for u, v in g.edges()]
                fh.write(json.dumps(rec) + "\n")
    elif suffix == ".png":
        if schema.kind == "molecule":
            from .convert.rdkit import to_mol
            from .viz import draw_molecules

            draw_molecules(to_mol(samples, schema)[:64], out, raw=to_mol(samples, schema, sanitize=False)[:64])
        else:
            from .viz import draw_graphs

            draw_graphs(to_networkx(samples, schema)[:64], out)
    else:
        raise ConfigError(f"--out must end in .smi, .sdf, .xyz, .jsonl or .png, got {out.name!r}")
    return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/K"`` -> ``(i, K)`` with ``0 <= i < K``."""
    if text is None:
        return None
    try:
        i, k = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard wants I/K (e.g. 0/4), got {text!r}") from None
    if k < 1 or not 0 <= i < k:
        raise ConfigError(f"--shard I/K needs 0 <= I < K, got {text!r}")
    return i, k


def cmd_sample(args) -> int:
    from .pipeline import GraphDiffusionPipeline
    from .checks import check_at_least
    from .train import distributed as D

    check_at_least(args, {"--seed": 0, "--batch-size": 1, "--candidates": 1, "--paths": 1})
    if args.guide == "self":  # observation self-guidance: inpainting / series completion (graphdiff.cli_observe)
        from .cli_observe import sample_observed

        if args.cond or args.guidance is not None or args.nodes is not None:
            raise ConfigError("--guide self does not take --cond, --guidance or --nodes yet (it completes "
                              "--observed on the model's fixed grid or path)")
        return sample_observed(args)
    if (args.observed is not None or args.observed_mask is not None or args.variant is not None
            or args.replace is not None):
        raise ConfigError("--observed, --observed-mask, --variant and --replace need --guide self")
    if args.n is not None and args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be a positive integer, got {args.steps}")
    out = check_output_file(args.out, "--out", (".smi", ".sdf", ".xyz", ".jsonl", ".png", ".npy"))
    shard = parse_shard(args.shard)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if shard is not None and world > 1:
        raise ConfigError("--shard and torchrun both split the samples; use one of them")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    if args.workers not in (None, 1) and (shard is not None or world > 1 or args.guide is not None):
        raise ConfigError("--workers splits the samples itself; drop --shard / torchrun / --guide")
    pipe = GraphDiffusionPipeline.from_pretrained(args.model, device=args.device)
    check_output_file(out, "--out", inputs={"model's training data": pipe.config.dataset})  # never written over
    if args.compile:
        pipe.compile()
    from .adapters import fixed_graph_spec

    adapter = (fixed_graph_spec(pipe.schema) or {}).get("adapter")
    if adapter == "path":  # unguided windows are in the model's scaled units: a forecast or a completion is the use
        raise ConfigError(f"{args.model} is a time-series model: forecast with graphdiff forecast --model "
                          f"{args.model} --context FILE.csv --horizon H --out F.csv, or complete a series with "
                          f"graphdiff sample --model {args.model} --guide self --observed FILE.csv --out F.csv")
    if adapter == "grid" and out.suffix.lower() not in (".png", ".npy"):
        raise ConfigError(f"--out {out.name}: {args.model} is an image model; write its samples to .png (a grid) "
                          f"or .npy (arrays)")
    if out.suffix.lower() == ".smi" and pipe.schema.kind != "molecule":
        raise ConfigError(f"{args.model} generates {pipe.schema.kind}s, not molecules; write them to .jsonl or .png, "
                          f"not .smi")

    from .processes.mixed3d import Mixed3DProcess

    if out.suffix.lower() in (".sdf", ".xyz") and not isinstance(pipe.process, Mixed3DProcess):
        raise ConfigError(f"--out {out.name}: .sdf and .xyz need a 3D model (coordinates); {args.model} has none")
    if out.suffix.lower() == ".npy" and (fixed_graph_spec(pipe.schema) or {}).get("adapter") != "grid":
        raise ConfigError(f"--out {out.name}: .npy arrays are written for image models; {args.model} is not one")
    n = args.n or pipe.config.sample.num_samples
    if n is None:
        raise ConfigError(f"-n is required: {args.model} has no sample.num_samples")
    from .config import parse_overrides

    kw = {}
    for key, value in parse_overrides(args.set).items():
        if isinstance(value, dict):
            raise ConfigError(f"sample --set takes sampler knobs as KEY=VALUE (e.g. prefix_cache=false), got "
                              f"a dotted key {key}.{next(iter(value))}")
        kw[key] = value
    kw.update(condition_kwargs(args, kw, n, pipe.schema.max_nodes))
    if args.batch_size:
        kw["batch_size"] = args.batch_size
    info = D.init_from_env("cpu" if args.device == "cpu" else "auto") if world > 1 else None
    if info is not None:
        shard = (info.rank, info.world_size)
    if args.guide is None and (args.reward is not None or args.reward_arg):
        raise ConfigError("--reward needs --guide (best_of_n, svdd, noise_search or regressor)")
    if args.guide not in ("regressor", "minority", "svdd") and args.regressor is not None:
        raise ConfigError("--regressor needs --guide regressor, minority or svdd (SVDD-MC's value network)")
    if args.guide != "regressor" and args.target_value is not None:
        raise ConfigError("--target-value needs --guide regressor")
    if args.guide != "faros" and (args.switch_time is not None or args.fraction is not None):
        raise ConfigError("--switch-time and --fraction need --guide faros")
    for flag, value, guides in (("--candidates", args.candidates, ("best_of_n", "svdd", "noise_search")),
                                ("--alpha", args.alpha, ("svdd",)), ("--paths", args.paths, ("noise_search",)),
                                ("--direction", args.direction, ("regressor",))):
        if value is not None and args.guide not in guides:
            raise ConfigError(f"{flag} is read by --guide {' / '.join(guides)}, not by "
                              f"{'unguided sampling' if args.guide is None else '--guide ' + args.guide}")
    if args.direction is not None and args.target_value is not None:
        raise ConfigError("--direction and --target-value: a target value sets the direction; give one of them")
    candidates = 10 if args.candidates is None else args.candidates
    if args.guide is not None:
        from .guidance import get_reward, parse_reward_args

        if info is not None or shard is not None:
            raise ConfigError("--guide runs unsharded (each sample's search is whole); drop --shard / torchrun")
        if args.reward is None and args.guide not in ("regressor", "minority", "faros"):
            raise ConfigError(f"--guide {args.guide} needs --reward NAME or module:function")
        if args.guide in ("regressor", "minority") and args.regressor is None:
            raise ConfigError(f"--guide {args.guide} needs --regressor DIR (made by graphdiff train-regressor)")
        reward = (get_reward(args.reward, **parse_reward_args(args.reward_arg or [])) if args.reward is not None
                  else None)
        strength = 1.0 if args.scale is None else args.scale
        opts = ({"N": candidates} if args.guide == "best_of_n" else
                {"M": candidates, "alpha": args.alpha or 0.0, "value": args.regressor} if args.guide == "svdd" else
                {"regressor": args.regressor, "target": args.target_value, "direction": args.direction or "max",
                 "scale": strength} if args.guide == "regressor" else
                {"regressor": args.regressor, "scale": strength} if args.guide == "minority" else
                {"switch_time": args.switch_time, "fraction": args.fraction} if args.guide == "faros" else
                {"K": 4 if args.paths is None else args.paths, "M": candidates})
        state = pipe.sample(n, steps=args.steps, sampler=args.sampler, seed=args.seed, progress=not args.quiet,
                            guide=args.guide, reward=reward, guide_options=opts, **kw)
        g = pipe.last_guidance
        what = (reward.name if reward is not None else "minus the parity gap" if args.guide == "faros" else
                f"the regressor's {g.cost.get('target')}")
        calls = ", ".join(f"{v:g} {k[:-len('_calls_per_sample')].replace('_', ' ')} calls"
                          for k, v in g.cost.items() if k.endswith("_calls_per_sample"))
        print(f"{args.guide} on {what}: median reward {float(np.nanmedian(g.rewards)):.4g}; per sample {calls}")
    else:
        state = pipe.sample(n, steps=args.steps, sampler=args.sampler, seed=args.seed, progress=not args.quiet,
                            shard=shard, workers=args.workers, **kw)
    if info is not None:  # rank 0 gathers the shards in rank order and writes one file
        parts = D.all_gather_object(state.to("cpu"))
        D.cleanup()
        if info.rank != 0:
            return 0
        from .state import GraphState

        state = GraphState.cat([p for p in parts if len(p)])
    write_samples(state, out, pipe.schema)
    what = f" (shard {shard[0]}/{shard[1]} of {n})" if shard is not None and info is None else ""
    if pipe.schema.kind == "molecule" and state.pos is None and len(state):
        from .convert.rdkit import to_smiles

        valid = sum(s is not None for s in to_smiles(state, pipe.schema))
        what += f"; {valid} of {len(state)} are valid molecules (strict, no correction)"
    elif pipe.schema.kind == "molecule" and len(state):
        what += _summary_3d(state, pipe.schema)
    elif pipe.schema.kind == "graph" and len(state):
        what += graph_validity(state, pipe, kw.get("cond"))
    print(f"wrote {len(state)} samples to {out}{what}")
    return 0


def _summary_3d(state, schema) -> str:
    """How many 3D samples are valid (RDKit, whole molecule) and stable (legacy MiDi rule), as the 3D evaluator
    counts them on the written molecules."""
    from .convert.rdkit3d import to_mols3d
    from .metrics.molecules3d import stability, validity_3d

    mols = to_mols3d(state, schema, sanitize=False)
    valid, stable = validity_3d(mols)["n_valid"], stability(mols, "legacy")["n_stable_molecules"]
    return (f"; {valid} of {len(state)} are valid molecules (RDKit, whole molecule), {stable} stable "
            f"(legacy MiDi rule)")
