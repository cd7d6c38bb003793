"""DiGress / DeFoG Lightning checkpoints (``.ckpt``) as graphdiff ``digress_transformer`` checkpoints.

A Lightning checkpoint is a ``torch.save`` of ``{"state_dict", "hyper_parameters", "epoch", "global_step", ...}``;
the network's tensors are the ``model.``-prefixed entries of ``state_dict``, and ``hyper_parameters`` holds the
run's Hydra config (``cfg``) beside the authors' dataset object (``dataset_infos``: node-count distribution,
category marginals, atom types, valences and weights). It is read with the restricted unpickler; configuration
and project objects become inert records (:func:`graphdiff.data.safe_pickle.safe_load_torch` with
``records=True``), whose attributes are read as data: nothing in the file is imported or run.

The network is :class:`graphdiff.nn.DiGressTransformerDenoiser`, the authors' ``GraphTransformer`` with their
tensor names, so the mapping is the identity: every ``model.<name>`` tensor must be a tensor of the network built
from the sizes the tensors imply (widths, layers) and the config (``n_head``, extra features), with its shape, and
every tensor of the network must be in the file; the first that is not is named in a one-line
:class:`~graphdiff.errors.CheckpointError`. DeFoG's network differs only by the 64 columns of its time embedding
in ``mlp_in_y``. The input features are the authors' (:mod:`graphdiff.nn.digress_features`, which says where
they differ from graphdiff's own :mod:`graphdiff.nn.features`).

Written config: process ``digress`` (transition, ``T = diffusion_steps``, cosine schedule; the authors' other
schedules are refused) or ``defog`` (limit = transition) with the authors' sampler settings (DiGress: ancestral
over all ``T`` steps; DeFoG: ``cfg.sample``'s steps, time distortion, ``eta``, ``omega``), and the schema of the
checkpoint's dataset: its categories (molecules: the authors' atom decoder; bonds ``none, SINGLE, DOUBLE, TRIPLE
[, AROMATIC]``), marginals and node-count distribution (probabilities scaled to counts per million).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ...errors import CheckpointError

LABELS = {"digress": "DiGress", "defog": "DeFoG"}
# the authors' dataset name -> ours
DATASETS = {"qm9": "qm9", "planar": "planar", "sbm": "sbm", "comm20": "community_small", "moses": "moses",
            "zinc": "zinc250k", "tree": "tree"}
BONDS = ("none", "SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
TIME_EMBEDDING = {"digress": 0, "defog": 64}


def _get(d, path: str, src: str, where: str = "hyper_parameters.cfg"):
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise CheckpointError(f"{src}: {where}.{path} is missing")
        cur = cur[part]
    return cur


def _attrs(obj) -> dict:
    """An inert record's (or a dict's) attributes."""
    from ...data.safe_pickle import Record, plain

    if isinstance(obj, Record):
        return {k: plain(v) for k, v in (obj.state if isinstance(obj.state, dict) else {}).items()}
    return obj if isinstance(obj, dict) else {}


def _size(tensors: dict, name: str, dim: int, src: str, label: str) -> int:
    if name not in tensors:
        raise CheckpointError(f"{src}: state_dict has no 'model.{name}' (not a {label} GraphTransformer)")
    return int(tensors[name].shape[dim])


def _floats(v, what: str, src: str) -> list[float]:
    import torch

    if isinstance(v, torch.Tensor):
        return [float(a) for a in v.reshape(-1).tolist()]
    if isinstance(v, dict):
        v = list(v.values())
    if not isinstance(v, (list, tuple)) or not all(isinstance(a, (int, float)) for a in v):
        raise CheckpointError(f"{src}: hyper_parameters.dataset_infos.{what} is not a list of numbers")
    return [float(a) for a in v]


def network_spec(tensors: dict, cfg: dict, infos: dict, fmt: str, src: str) -> dict:
    """The keyword arguments of :class:`~graphdiff.nn.DiGressTransformerDenoiser` the checkpoint implies."""
    from ...nn.digress_features import MODES, DiGressFeatures

    label = LABELS[fmt]
    layers = {int(m.group(1)) for k in tensors if (m := re.match(r"tf_layers\.(\d+)\.", k))}
    if not layers:
        raise CheckpointError(f"{src}: state_dict has no 'model.tf_layers.*' tensors (not a {label} GraphTransformer)")
    dx = _size(tensors, "tf_layers.0.self_attn.q.weight", 0, src, label)
    heads = _get(cfg, "model.hidden_dims.n_head", src)
    if not (isinstance(heads, int) and heads > 0 and dx % heads == 0):
        raise CheckpointError(f"{src}: hyper_parameters.cfg.model.hidden_dims.n_head={heads!r} does not divide the "
                              f"attention width {dx} of 'model.tf_layers.0.self_attn.q.weight'")
    mode = _get(cfg, "model.extra_features", src)
    if mode is not None and (mode not in MODES or (mode == "rrwp" and fmt == "digress")):
        raise CheckpointError(f"{src}: hyper_parameters.cfg.model.extra_features={mode!r} has no graphdiff "
                              f"counterpart (known: null, {', '.join(MODES)})")
    molecule = "atom_decoder" in infos
    molecular = None
    if molecule and (mode is not None or fmt == "defog"):  # DiGress adds them with the extra features only
        molecular = {"valencies": _floats(_get(infos, "valencies", src, "hyper_parameters.dataset_infos"),
                                          "valencies", src),
                     "atom_weights": _floats(_get(infos, "atom_weights", src, "hyper_parameters.dataset_infos"),
                                             "atom_weights", src),
                     "max_weight": float(_get(infos, "max_weight", src, "hyper_parameters.dataset_infos"))}
    max_nodes = int(_get(infos, "max_n_nodes", src, "hyper_parameters.dataset_infos"))
    rrwp = int(cfg["model"].get("rrwp_steps", 12)) if isinstance(cfg.get("model"), dict) else 12
    node_out = _size(tensors, "mlp_out_X.2.weight", 0, src, label)
    edge_out = _size(tensors, "mlp_out_E.2.weight", 0, src, label)
    fn, fe, fg = DiGressFeatures(mode, variant=fmt, max_nodes=max_nodes, rrwp_steps=rrwp, molecular=molecular).dims
    te = TIME_EMBEDDING[fmt]
    for name, got, want, what in (
            ("mlp_in_X.0.weight", _size(tensors, "mlp_in_X.0.weight", 1, src, label), node_out + fn,
             f"{node_out} categories + {fn} features"),
            ("mlp_in_E.0.weight", _size(tensors, "mlp_in_E.0.weight", 1, src, label), edge_out + fe,
             f"{edge_out} categories + {fe} features"),
            ("mlp_in_y.0.weight", _size(tensors, "mlp_in_y.0.weight", 1, src, label), fg + 1 + te,
             f"{fg} features + t" + (f" + {te} time embedding" if te else "") + ", no condition")):
        if got != want:
            raise CheckpointError(f"{src}: {label} tensor 'model.{name}' reads {got} inputs, extra_features={mode!r}"
                                  f"{' with molecular features' if molecular else ''} gives {want} ({what})")
    return dict(node_dim=node_out, edge_dim=edge_out, node_out=node_out, edge_out=edge_out,
                y_out=_size(tensors, "mlp_out_y.2.weight", 0, src, label), max_nodes=max_nodes,
                n_layers=max(layers) + 1, hidden_mlp_x=_size(tensors, "mlp_in_X.0.weight", 0, src, label),
                hidden_mlp_e=_size(tensors, "mlp_in_E.0.weight", 0, src, label),
                hidden_mlp_y=_size(tensors, "mlp_in_y.0.weight", 0, src, label), dx=dx,
                de=_size(tensors, "tf_layers.0.self_attn.e_add.weight", 1, src, label),
                dy=_size(tensors, "tf_layers.0.self_attn.y_y.weight", 0, src, label), n_head=heads,
                ff_x=_size(tensors, "tf_layers.0.linX1.weight", 0, src, label),
                ff_e=_size(tensors, "tf_layers.0.linE1.weight", 0, src, label),
                ff_y=_size(tensors, "tf_layers.0.lin_y1.weight", 0, src, label), extra_features=mode, variant=fmt,
                rrwp_steps=rrwp, molecular=molecular, time_embedding=te)


def _schema(infos: dict, spec: dict, src: str):
    from ...schema import Schema

    where = "hyper_parameters.dataset_infos"
    max_nodes = spec["max_nodes"]
    probs = _floats(_get(infos, "n_nodes", src, where), "n_nodes", src)
    if len(probs) > max_nodes + 1 or sum(probs) <= 0:
        raise CheckpointError(f"{src}: {where}.n_nodes has {len(probs)} entries (sum {sum(probs):g}), max_n_nodes "
                              f"is {max_nodes}")
    hist = tuple(round(p / sum(probs) * 1_000_000) for p in probs) + (0,) * (max_nodes + 1 - len(probs))
    kx, ke = spec["node_out"], spec["edge_out"]
    node_m = _floats(_get(infos, "node_types", src, where), "node_types", src)
    edge_m = _floats(_get(infos, "edge_types", src, where), "edge_types", src)
    if len(node_m) != kx or len(edge_m) != ke:
        raise CheckpointError(f"{src}: {where} has {len(node_m)} node and {len(edge_m)} edge marginals, the network "
                              f"predicts {kx} and {ke} categories")
    if "atom_decoder" in infos:
        atoms = tuple(str(a) for a in infos["atom_decoder"])
        if len(atoms) != kx or ke not in (4, 5):
            raise CheckpointError(f"{src}: {where}.atom_decoder has {len(atoms)} atoms and the network {kx} node and "
                                  f"{ke} edge categories (bonds: none, single, double, triple[, aromatic])")
        return Schema(node_categories=atoms, edge_categories=BONDS[:ke], kind="molecule", max_nodes=max_nodes,
                      node_count_hist=hist, node_marginals=tuple(node_m), edge_marginals=tuple(edge_m))
    nodes = ("node",) if kx == 1 else tuple(f"type{i}" for i in range(kx))
    edges = ("none", "edge") if ke == 2 else ("none",) + tuple(f"edge{i}" for i in range(1, ke))
    return Schema(node_categories=nodes, edge_categories=edges, kind="graph", max_nodes=max_nodes,
                  node_count_hist=hist, node_marginals=tuple(node_m), edge_marginals=tuple(edge_m))


def _process_and_sampler(cfg: dict, fmt: str, src: str) -> tuple[dict, dict]:
    transition = _get(cfg, "model.transition", src)
    if transition not in ("marginal", "uniform"):
        raise CheckpointError(f"{src}: hyper_parameters.cfg.model.transition={transition!r} is not one graphdiff "
                              "imports (marginal, uniform)")
    if fmt == "digress":
        schedule = _get(cfg, "model.diffusion_noise_schedule", src)
        if schedule != "cosine":
            raise CheckpointError(f"{src}: hyper_parameters.cfg.model.diffusion_noise_schedule={schedule!r}: "
                                  "graphdiff's DiGress has the cosine schedule only")
        steps = int(_get(cfg, "model.diffusion_steps", src))
        return ({"name": "digress", "transition": transition, "T": steps, "schedule": "cosine"},
                {"sampler": "ancestral", "steps": steps})
    sample = cfg.get("sample") if isinstance(cfg.get("sample"), dict) else {}
    model = cfg["model"]
    pick = lambda k, default: sample.get(k, model.get(k, default))  # noqa: E731  (older configs: model section)
    return ({"name": "defog", "limit": transition},
            {"sampler": "ctmc", "steps": int(pick("sample_steps", 1000)),
             "time_distortion": str(pick("time_distortion", "identity")), "eta": float(pick("eta", 0.0)),
             "omega": float(pick("omega", 0.0))})


def convert(path: Path, out: Path, *, fmt: str, dataset: str | None = None, root=None) -> dict:
    """Convert the DiGress / DeFoG checkpoint ``path`` into the checkpoint folder ``out``; returns a summary.

    Raises:
        CheckpointError: a file that is not a Lightning checkpoint of that network, a config graphdiff cannot
            follow, or a tensor that is missing, unexpected or misshapen; one line naming the file and the key.
    """
    import torch

    from ...config import RunConfig
    from ...data.safe_pickle import plain, safe_load_torch
    from ...errors import DataError
    from ...nn.digress_transformer import DiGressTransformerDenoiser
    from ...train.checkpoint import save_checkpoint

    src, label = str(path), LABELS[fmt]
    try:
        ck = safe_load_torch(path, records=True)
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(ck, dict) or "state_dict" not in ck:
        hint = "; it holds GDSS's x_state_dict / adj_state_dict: --format gdss" if isinstance(ck, dict) and \
            "adj_state_dict" in ck else ""
        raise CheckpointError(f"{src}: no 'state_dict' (not a Lightning checkpoint){hint}")
    sd = ck["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{src}: 'state_dict' is a {type(sd).__name__}, not a mapping of tensors")
    tensors = {k[len("model."):]: v for k, v in sd.items() if isinstance(k, str) and k.startswith("model.")}
    if not tensors:
        raise CheckpointError(f"{src}: state_dict has no 'model.' tensors (not a {label} checkpoint)")
    bad = next((k for k, v in tensors.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{src}: state_dict['model.{bad}'] is a {type(tensors[bad]).__name__}, not a tensor")
    hp = ck.get("hyper_parameters")
    hp = hp if isinstance(hp, dict) else {}
    cfg = plain(hp.get("cfg"))
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise CheckpointError(f"{src}: hyper_parameters.cfg.model is missing (not a {label} Lightning checkpoint)")
    infos = _attrs(hp.get("dataset_infos"))
    if not infos:
        raise CheckpointError(f"{src}: hyper_parameters.dataset_infos is missing (the node-count distribution and "
                              "marginals live there)")
    spec = network_spec(tensors, cfg, infos, fmt, src)
    net = DiGressTransformerDenoiser(**spec)
    own = net.state_dict()
    for name, value in tensors.items():
        if name not in own:
            raise CheckpointError(f"{src}: {label} tensor 'model.{name}' {tuple(value.shape)} has no counterpart in "
                                  "graphdiff's digress_transformer")
        if tuple(own[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{src}: {label} tensor 'model.{name}' is {tuple(value.shape)}, graphdiff's is "
                                  f"{tuple(own[name].shape)}")
    missing = next((k for k in own if k not in tensors), None)
    if missing is not None:
        raise CheckpointError(f"{src}: state_dict has no 'model.{missing}' {tuple(own[missing].shape)} (graphdiff's "
                              "digress_transformer needs it)")
    net.load_state_dict({k: v.detach().to(own[k].dtype) for k, v in tensors.items()}, strict=True)

    schema = _schema(infos, spec, src)
    process, sample = _process_and_sampler(cfg, fmt, src)
    sample["use_ema"] = False  # the authors' Lightning files hold the trained weights only
    theirs = str(infos.get("name") or (cfg.get("dataset") or {}).get("name") or "unknown")
    name = dataset or DATASETS.get(theirs, theirs)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    config = RunConfig.from_dict({
        "name": f"{fmt}-imported-{name}",
        "description": f"the {label} authors' checkpoint {Path(path).name} ({theirs}, sha256 {digest}...), imported "
                       f"by graphdiff import-checkpoint; the authors' sampler settings",
        "dataset": name, "process": process, "model": {"name": "digress_transformer", **spec},
        "sample": sample, "schema": schema.to_dict(),
    }, where=src)
    save_checkpoint(out, config=config.to_dict(), model=net)
    return {"format": fmt, "dataset": theirs, "graphdiff_dataset": name, "out": str(out), "tensors": len(tensors),
            "dropped_unused": [], "ema": False, "sample": sample, "node_categories": list(schema.node_categories),
            "node_counts": "the checkpoint's dataset_infos.n_nodes", "extra_features": spec["extra_features"],
            "molecular_features": spec["molecular"] is not None}
