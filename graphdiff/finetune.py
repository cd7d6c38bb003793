"""Fine-tuning a trained model on a new dataset: schema alignment by name, grown networks, LoRA, lineage.

:func:`finetune` (``pipe.finetune``, ``graphdiff finetune``) continues a base model on new data:

1. **Alignment by name** (:func:`align`): the fine-tuning schema keeps the base model's node and edge categories in
   their places and appends the data's new ones; the data's graphs are re-encoded into that order
   (:class:`AlignedSplit`), so a dataset whose schema lists the same atoms in another order trains the right
   channels. ``max_nodes``, the node-count histogram, the marginals and the condition columns come from the data
   (``finetune.marginals: base`` keeps the base model's marginals, so its "marginal" noise stays the one it learned).
2. **Growth**: a denoiser with a ``grow`` method (the DiGress / DeFoG graph transformer) is widened for the new
   categories, a larger ``max_nodes`` and new condition columns so that, before any step, its outputs for the old
   categories on old-category inputs are the base model's (:mod:`graphdiff.nn.growth`). Networks without one
   accept only data that needs no growth.
3. **Training**: a fresh AdamW and schedule (``finetune.lr``, default the base run's ``train.lr``, and
   ``finetune.warmup_steps``), EMA restarted from the base weights, ``finetune.freeze`` (a regular expression
   over parameter names) and ``finetune.lora_rank`` (LoRA adapters through ``peft`` on every linear layer of the
   denoiser, merged into the weights when training stops). ``resume=True`` continues an interrupted fine-tune.
4. **Lineage**: ``config.json``'s ``finetune.lineage`` gets a record (base model, its sha256 and steps, data,
   fine-tune steps, trained parameters); the final model is written to ``<out>/model`` (merged weights), the
   training checkpoint stays in ``<out>/checkpoint`` for resuming.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, DataError, TrainingError
from .schema import Schema
from .state import GraphState


# what `graphdiff finetune` starts from without --from, by the data's schema kind
DEFAULT_BASE = {"molecule": "qm9-defog", "graph": "lggm-base"}


@dataclass(frozen=True)
class Alignment:
    """How a dataset's channels map into the fine-tuning schema.

    Attributes:
        schema: base categories first (in the base order), then the data's new ones.
        node_index: data node category ``i`` -> schema channel ``node_index[i]``.
        edge_index: data edge category ``i`` -> schema channel ``edge_index[i]``.
        new_nodes / new_edges: the categories the base model never saw.
    """

    schema: Schema
    node_index: tuple[int, ...]
    edge_index: tuple[int, ...]
    new_nodes: tuple[str, ...]
    new_edges: tuple[str, ...]

    @property
    def identity(self) -> bool:
        return (self.node_index == tuple(range(len(self.node_index)))
                and self.edge_index == tuple(range(len(self.edge_index))))


def align(base: Schema, data: Schema, *, where: str = "fine-tune") -> Alignment:
    """The fine-tuning schema of a base model's schema and a dataset's (see the module docstring)."""
    if base.kind != data.kind:
        what = ("a graph model cannot fine-tune on molecules: its node categories "
                f"{list(base.node_categories)} map to no atom type" if base.kind == "graph" else
                "a molecule model cannot fine-tune on plain graphs (no atom types to map its categories to)")
        raise ConfigError(f"{where}: {what}")
    if base.explicit_h != data.explicit_h:
        raise ConfigError(f"{where}: the base model has {'explicit' if base.explicit_h else 'implicit'} hydrogens, "
                          f"the data {'explicit' if data.explicit_h else 'implicit'}")
    if base.node_continuous != data.node_continuous:
        raise ConfigError(f"{where}: continuous node channels differ: base {list(base.node_continuous)}, data "
                          f"{list(data.node_continuous)}")
    new_nodes = tuple(c for c in data.node_categories if c not in base.node_categories)
    new_edges = tuple(c for c in data.edge_categories if c not in base.edge_categories)
    nodes = tuple(base.node_categories) + new_nodes
    edges = tuple(base.edge_categories) + new_edges
    node_index = tuple(nodes.index(c) for c in data.node_categories)
    edge_index = tuple(edges.index(c) for c in data.edge_categories)
    node_marg = np.zeros(len(nodes))
    if data.node_marginals:
        node_marg[list(node_index)] = data.node_marginals
    edge_marg = np.zeros(len(edges))
    if data.edge_marginals:
        edge_marg[list(edge_index)] = data.edge_marginals
    max_nodes = max(base.max_nodes, data.max_nodes)
    hist = list(data.node_count_hist) + [0] * (max_nodes + 1 - len(data.node_count_hist))
    schema = dataclasses.replace(
        data, node_categories=nodes, edge_categories=edges, max_nodes=max_nodes, node_count_hist=tuple(hist),
        node_marginals=tuple(float(v) for v in node_marg) if data.node_marginals else (),
        edge_marginals=tuple(float(v) for v in edge_marg) if data.edge_marginals else ())
    return Alignment(schema, node_index, edge_index, new_nodes, new_edges)


def base_marginals(a: Alignment, base: Schema, process: dict) -> Alignment:
    """``a`` with the base model's node and edge marginals (``finetune.marginals: base``); refused (one line) where
    they set no noise (a process whose limit distribution is not ``marginal``) or where the data brings categories
    the base has no marginal for."""
    limit = process.get("transition", process.get("limit"))
    if limit != "marginal" or not base.edge_marginals:
        raise ConfigError(f"finetune.marginals: 'base' keeps the noise of a process with marginal limits; the base "
                          f"model's {process.get('name')} process has limit {limit!r}, so the marginals set no noise")
    if a.new_nodes or a.new_edges:
        new = list(a.new_nodes) + list(a.new_edges)
        raise ConfigError(f"finetune.marginals: 'base' keeps the base model's marginals, which have no entry for the "
                          f"data's new categories {new}; use 'data'")
    return dataclasses.replace(a, schema=dataclasses.replace(
        a.schema, node_marginals=tuple(base.node_marginals), edge_marginals=tuple(base.edge_marginals)))


class AlignedSplit:
    """A dataset split whose batches are re-encoded into an :class:`Alignment`'s channel order (everything else is
    the split's own)."""

    def __init__(self, split, alignment: Alignment):
        self._split = split
        self.alignment = alignment
        self.schema = alignment.schema

    def __len__(self) -> int:
        return len(self._split)

    def __getattr__(self, name):  # num_nodes, processed_dir, name, ... of the wrapped split
        return getattr(self._split, name)

    def batch(self, indices, max_nodes: int | None = None) -> GraphState:
        b = self._split.batch(indices) if max_nodes is None else self._split.batch(indices, max_nodes)
        return remap(b, self.alignment)

    def __getitem__(self, i: int) -> GraphState:
        return remap(self._split[i], self.alignment)


def remap(state: GraphState, a: Alignment) -> GraphState:
    """``state`` (in the data's channel order) in the fine-tuning schema's order."""
    if a.identity and len(a.node_index) == a.schema.num_node_types and \
            len(a.edge_index) == a.schema.num_edge_types:
        return dataclasses.replace(state, schema=a.schema)
    k_data = len(a.node_index)
    x = state.x.new_zeros(*state.x.shape[:-1], a.schema.node_dim)
    x[..., list(a.node_index)] = state.x[..., :k_data]
    if state.x.shape[-1] > k_data:  # continuous channels follow the one-hot ones
        x[..., a.schema.num_node_types:] = state.x[..., k_data:]
    e = state.e.new_zeros(*state.e.shape[:-1], a.schema.num_edge_types)
    e[..., list(a.edge_index)] = state.e
    return dataclasses.replace(state, x=x, e=e, schema=a.schema)


def _grow(denoiser, a: Alignment, kwargs: dict, model_cfg: dict) -> None:
    """Widen ``denoiser`` to the sizes ``kwargs`` (the process's denoiser sizes on the aligned data)."""
    changed = {k: (model_cfg.get(k), v) for k, v in kwargs.items() if model_cfg.get(k) != v}
    if not changed:
        return
    grow = getattr(denoiser, "grow", None)
    if grow is None:
        what = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(changed.items()))
        raise ConfigError(f"model {model_cfg.get('name')!r} cannot be widened for this data ({what}); fine-tune it "
                          "on data with the base model's categories, sizes and conditions")
    grow(node_new=len(a.new_nodes), edge_new=len(a.new_edges), max_nodes=kwargs.get("max_nodes"),
         cond_dim=kwargs.get("cond_dim"))
    for k, (_, new) in changed.items():  # the widened network must be what the config will rebuild
        if getattr(denoiser, k, new) != new:
            raise ConfigError(f"fine-tune: the grown network has {k}={getattr(denoiser, k)}, the data needs {new}")


def linear_module_names(module: torch.nn.Module) -> list[str]:
    """Names of the :class:`torch.nn.Linear` submodules (LoRA's targets)."""
    return [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def add_lora(denoiser, rank: int, alpha: float | None, dropout: float):
    """``denoiser`` with ``peft`` LoRA adapters on every linear layer (only the adapters train)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("--lora needs the peft library: pip install 'graphdiff[lora]' (or pip install peft)") \
            from None
    targets = linear_module_names(denoiser)
    if not targets:
        raise ConfigError("--lora: the denoiser has no linear layers to adapt")
    cfg = LoraConfig(r=int(rank), lora_alpha=float(alpha if alpha is not None else 2 * rank),
                     lora_dropout=float(dropout), target_modules=targets, bias="none")
    return get_peft_model(denoiser, cfg)


def merge_lora(module):
    """The plain denoiser with LoRA adapters merged into its weights (``module`` itself when it has none)."""
    merge = getattr(module, "merge_and_unload", None)
    return merge() if merge is not None else module


def freeze(denoiser, pattern: str) -> int:
    """Stop training the parameters whose names match ``pattern``; returns how many tensors were frozen."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--freeze {pattern!r} is not a regular expression ({exc})") from None
    hit = 0
    for name, p in denoiser.named_parameters():
        if rx.search(name):
            p.requires_grad_(False)
            hit += 1
    if hit == 0:
        names = [n for n, _ in denoiser.named_parameters()]
        raise ConfigError(f"--freeze {pattern!r} matches no parameter; names look like {', '.join(names[:4])}, ...")
    return hit


def count_parameters(module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    ps = list(module.parameters())
    return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)


def _check_data(ds, split) -> None:
    if len(split) == 0:
        raise DataError(f"dataset {ds.name}: the training split is empty; nothing to fine-tune on")


_METHOD = {"freeze": "--freeze", "lora_rank": "--lora", "lora_alpha": "finetune.lora_alpha",
           "lora_dropout": "finetune.lora_dropout", "marginals": "finetune.marginals"}


def _recorded_finetune(out: Path) -> dict | None:
    """The ``finetune`` section of the interrupted fine-tune's checkpoint in ``out`` (``None``: no checkpoint)."""
    import json

    from .errors import CheckpointError
    from .train.checkpoint import resolve_checkpoint

    try:
        cfg = json.loads((resolve_checkpoint(out / "checkpoint") / "config.json").read_text())
    except (CheckpointError, OSError, ValueError):
        return None
    return (cfg.get("finetune") or {}) if isinstance(cfg, dict) else None


def _resumed_method(out: Path, ft, asked: dict):
    """``ft`` with the method of the interrupted fine-tune in ``out`` (``freeze``, ``lora_rank``, ``lora_alpha``,
    ``lora_dropout``, ``marginals``, read from its checkpoint), so that a resume trains what the run trained; a
    value ``asked`` for (flags and ``--set finetune.*``) that differs is a one-line error."""
    recorded = _recorded_finetune(out)
    if recorded is None:
        return ft  # no checkpoint: the trainer says so and starts afresh
    default = type(ft)()
    was = {k: recorded.get(k, getattr(default, k)) for k in _METHOD}
    for key, flag in _METHOD.items():
        if key in asked and asked[key] != was[key]:
            raise ConfigError(f"{out}: the run being resumed was fine-tuned with {flag} {was[key]!r}, not "
                              f"{asked[key]!r}; resume with its settings, or start afresh with --overwrite")
    return dataclasses.replace(ft, **was)


def _recorded_transfer(out: Path) -> list:
    """The condition-transfer record of the interrupted fine-tune in ``out`` (``[]`` when there is none)."""
    lineage = (_recorded_finetune(out) or {}).get("lineage") or [{}]
    return list(lineage[-1].get("condition_transfer") or []) if isinstance(lineage[-1], dict) else []


def finetune(pipe, dataset, *, out, root=None, max_minutes: float | None = None, max_steps: int | None = None,
             overrides: dict | None = None, freeze_pattern: str | None = None, lora: int | None = None,
             resume: bool = False, progress: bool = True, base_name: str | None = None, overwrite: bool = False,
             dataset_options: dict | None = None, callbacks=()):
    """Fine-tune ``pipe`` on ``dataset`` (a name, a file or a loaded dataset); returns the fine-tuned pipeline
    (see the module docstring). ``overrides`` are preset-shaped (``{"train": {...}, "finetune": {...}}``);
    ``dataset_options`` go to the dataset's loader (``{"smiles_column": "SMILES_in"}`` for a custom CSV);
    ``callbacks`` go to the :class:`~graphdiff.train.Trainer` (``cb(trainer, event, info)``)."""
    from .config import FinetuneConfig, RunConfig, merge
    from .data import dataset_record, load_dataset
    from .hub import model_sha256
    from .data.base import train_schema
    from .processes import build_process, process_class
    from .train import Trainer, TrainConfig

    from .train.run_folder import check_resume_or_overwrite

    check_resume_or_overwrite(resume, overwrite)  # before any data work
    base_cfg = pipe.config
    over = dict(overrides or {})
    bad = set(over) - {"train", "finetune", "sample", "evaluate"}
    if bad:
        raise ConfigError(f"fine-tune overrides may set train, finetune, sample and evaluate; not "
                          f"{', '.join(sorted(bad))} (the base model fixes process and model)")
    # the base's fine-tune settings carry over, but not its lineage nor which marginals it kept (a choice about its
    # own data): a fine-tune takes the new data's unless asked
    ft = FinetuneConfig.from_dict(merge(base_cfg.finetune.to_dict() | {"lineage": [], "marginals": "data"},
                                        over.get("finetune") or {}), where="finetune")
    if freeze_pattern is not None:
        ft = dataclasses.replace(ft, freeze=freeze_pattern)
    if lora is not None:
        if isinstance(lora, bool) or not isinstance(lora, (int, np.integer)) or lora < 0:
            raise ConfigError(f"--lora must be an integer >= 0, got {lora!r}")
        ft = dataclasses.replace(ft, lora_rank=int(lora))
    if resume:
        asked = {k: getattr(ft, k) for k in _METHOD if k in (over.get("finetune") or {})}
        asked.update({k: getattr(ft, k) for k, given in (("freeze", freeze_pattern), ("lora_rank", lora))
                      if given is not None})
        ft = _resumed_method(Path(out), ft, asked)
    ds = load_dataset(dataset, root=root, **(dataset_options or {})) if isinstance(dataset, (str, Path)) else dataset
    train_split = ds.split("train")
    _check_data(ds, train_split)
    from .data.base import note_invalid_rows

    note_invalid_rows(ds)
    a = align(pipe.schema, train_schema(ds), where=f"fine-tune {base_name or 'model'} on {ds.name}")
    if ft.marginals == "base":
        a = base_marginals(a, pipe.schema, base_cfg.process)
    aligned = AlignedSplit(train_split, a)
    name = base_cfg.process["name"]
    spec = process_class(name).resolve({k: v for k, v in base_cfg.process.items()}, a.schema, aligned)
    process = build_process(spec, a.schema)
    kwargs = process.denoiser_kwargs()
    fresh = TrainConfig()  # the base run's machine settings (threads, device) are not this machine's
    tcfg = merge(base_cfg.train.to_dict(), {"lr": ft.lr or base_cfg.train.lr, "warmup_steps": ft.warmup_steps,
                                            "max_minutes": None, "max_steps": None, "threads": fresh.threads,
                                            "device": fresh.device})
    tcfg = merge(tcfg, over.get("train") or {})
    if max_minutes is not None:
        tcfg["max_minutes"] = max_minutes
    if max_steps is not None:
        tcfg["max_steps"] = max_steps
    if tcfg.get("max_steps") is not None and "epochs" not in (over.get("train") or {}):
        # a step budget is not cut short by the base run's epoch count (an epoch is at least one step)
        tcfg["epochs"] = max(int(tcfg.get("epochs") or 1), int(tcfg["max_steps"]))
    tc = TrainConfig.from_dict(tcfg, where="fine-tune train")
    if tc.max_steps is None and tc.max_minutes is None and "epochs" not in (over.get("train") or {}):
        raise ConfigError("fine-tune: give a budget (--max-minutes, --max-steps or train.max_steps)")

    from .train.schedule import seeded_init

    denoiser = copy.deepcopy(pipe.denoiser)  # the base pipeline stays as it was
    denoiser.requires_grad_(True)  # a pipeline returned by a fine-tune (or a frozen one) is trained whole again
    with seeded_init(tc.seed, "finetune", "grow"):  # new rows follow train.seed, not what ran before in the process
        _grow(denoiser, a, kwargs, base_cfg.model)
    transferred = []
    if ft.condition_transfer and resume:  # the weights come from the checkpoint; its record carries over
        transferred = _recorded_transfer(Path(out))
    elif ft.condition_transfer:
        from .condition_transfer import transfer_conditions

        transferred = transfer_conditions(process, denoiser, aligned, a.schema)

    denoiser.train()
    if ft.freeze:
        freeze(denoiser, ft.freeze)
    total = count_parameters(denoiser)[1]  # the model's own size: LoRA's adapters are merged into it at the end
    with seeded_init(tc.seed, "finetune", "lora"):  # the adapters' initial weights, likewise
        model = add_lora(denoiser, ft.lora_rank, ft.lora_alpha, ft.lora_dropout) if ft.lora_rank else denoiser
    trainable = count_parameters(model)[0]
    if trainable == 0:
        raise ConfigError("fine-tune: nothing left to train (every parameter frozen)")

    source = getattr(pipe, "source", None) or {}
    record = {"base": base_name or source.get("model") or base_cfg.name, "base_steps": pipe.total_steps,
              "data": ds.name, "new_node_categories": list(a.new_nodes), "new_edge_categories": list(a.new_edges),
              "trainable_parameters": trainable, "parameters": total,
              "method": f"LoRA rank {ft.lora_rank} (peft)" if ft.lora_rank else "full" + (
                  f", frozen {ft.freeze!r}" if ft.freeze else "")}
    if ft.marginals != "data":
        record["marginals"] = ft.marginals  # the base model's, not the data's
    if transferred:
        record["condition_transfer"] = transferred
    if source.get("folder"):
        try:
            record["base_sha256"] = model_sha256(Path(source["folder"]))
        except OSError:
            pass
    lineage = list(base_cfg.finetune.lineage) + [record]
    recorded, options = dataset_record(dataset, ds, dataset_options or {})  # the new data's, not the base run's
    cfg = base_cfg.with_data(a.schema, process.to_dict(), kwargs).replace(
        dataset=recorded, dataset_options=options, train=tc, finetune=dataclasses.replace(ft, lineage=lineage))
    if over.get("sample") or over.get("evaluate"):
        cfg = RunConfig.from_dict(merge(cfg.to_dict(), {k: over[k] for k in ("sample", "evaluate") if k in over}))

    out = Path(out)
    from .train.checkpoint import check_replaceable

    check_replaceable(out / "model")  # where the merged model goes: refused before training, not after
    trainer = Trainer(process, model, aligned, tc, out, run_config=cfg.to_dict(), progress=progress,
                      callbacks=callbacks)
    summary = trainer.fit(resume=resume, overwrite=overwrite)
    if summary.get("loss") is not None and not np.isfinite(summary["loss"]):
        raise TrainingError(f"fine-tune: the loss is {summary.get('loss')}")
    use = trainer.ema_model if (cfg.sample.use_ema and trainer.ema_model is not None) else trainer.model
    final = merge_lora(use)
    final.eval()
    record["steps"] = int(summary["steps"])
    cfg = cfg.replace(finetune=dataclasses.replace(cfg.finetune, lineage=lineage))
    new = type(pipe)(process, final, cfg)
    new.trained_steps = int(summary["steps"])
    new.summary = {**summary, "trainable_parameters": trainable, "parameters": total,
                   "new_node_categories": list(a.new_nodes), "model": str(out / "model")}
    new.save_pretrained(out / "model")
    new.checkpoint = out / "model"
    return new
