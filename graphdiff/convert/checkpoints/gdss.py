"""The GDSS authors' checkpoints (github.com/harryjo97/GDSS, ``checkpoints/*/gdss_*.pth``) as graphdiff checkpoints.

A GDSS ``.pth`` is a ``torch.save`` of ``{"model_config", "params_x", "params_adj", "x_state_dict",
"adj_state_dict"}`` plus ``"ema_x"`` / ``"ema_adj"`` (``{"decay", "num_updates", "shadow_params"}``) when the
run kept an EMA; ``model_config`` is the run's configuration (an ``EasyDict``). It is read with the restricted
unpickler (:func:`graphdiff.data.safe_pickle.safe_load_torch`: containers, numbers, strings, tensors).

Our networks (:mod:`graphdiff.nn.gdss`, variant ``gdss``) are the authors' parameter for parameter; modules are
renamed (``gnn_q`` -> ``q``, ``mlp`` -> ``adj_mlp``, ``multi_channel`` -> ``x_out``, ``linear`` -> ``linears.0``)
and the tensors of the outputs the authors compute but never use (the node output of ScoreNetworkA's last layer,
the adjacency output of ScoreNetworkX_GMH's last layer) are left out; every other tensor must land, with its
shape. The checkpoint's own schema is built (QM9: C, N, O, F; ZINC250k: C, N, O, F, P, S, Cl, Br, I; graph sets:
unlabelled), with the node-count histogram of our copy of the dataset's training split (GDSS draws sizes from
its training graphs), and the paper's sampler settings are recorded in the config's ``sample`` section.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from ...errors import CheckpointError

REQUIRED = ("model_config", "params_x", "params_adj", "x_state_dict", "adj_state_dict")
# the authors' dataset name -> ours
DATASETS = {"QM9": "qm9", "ZINC250k": "zinc250k", "community_small": "community_small", "ego_small": "ego_small",
            "ENZYMES": "enzymes", "grid": "grid"}
# node categories of the molecule sets, in the order of the authors' one-hot channels (utils/data_loader_mol.py)
ATOMS = {"QM9": ("C", "N", "O", "F"), "ZINC250k": ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")}
BONDS = ("none", "SINGLE", "DOUBLE", "TRIPLE")
# the molecule checkpoints carry no sampler section: the authors' config/sample_qm9.yaml, sample_zinc250k.yaml
PAPER_SAMPLERS = {
    "QM9": ({"predictor": "Reverse", "corrector": "Langevin", "snr": 0.2, "scale_eps": 0.7, "n_steps": 1},
            {"use_ema": False, "eps": 1.0e-4}),
    "ZINC250k": ({"predictor": "Reverse", "corrector": "Langevin", "snr": 0.2, "scale_eps": 0.9, "n_steps": 1},
                 {"use_ema": False, "eps": 1.0e-4}),
}
_X_KEYS = {"ScoreNetworkX": ("depth", "nhid"),
           "ScoreNetworkX_GMH": ("depth", "nhid", "num_linears", "c_init", "c_hid", "c_final", "adim", "num_heads",
                                 "conv")}
_A_KEYS = ("nhid", "num_layers", "num_linears", "c_init", "c_hid", "c_final", "adim", "num_heads", "conv")
_RENAMES = ((r"\.gnn_q\.", ".q."), (r"\.gnn_k\.", ".k."), (r"\.gnn_v\.", ".v."), (r"\.mlp\.", ".adj_mlp."),
            (r"\.multi_channel\.", ".x_out."), (r"(^|\.)linear\.", r"\1linears.0."))


def _need(d, key: str, where: str, src: str):
    if not isinstance(d, dict) or key not in d:
        raise CheckpointError(f"{src}: {where}{'.' if where else ''}{key} is missing (not a GDSS checkpoint?)")
    return d[key]


def our_name(name: str) -> str:
    """Our parameter name for one of the authors' (within one network)."""
    if name.startswith("module."):  # saved from a DataParallel model
        name = name[len("module."):]
    for pat, rep in _RENAMES:
        name = re.sub(pat, rep, name)
    return name


def _unused(name: str, kind: str, last: int) -> bool:
    """Whether an authors' tensor feeds an output their own forward pass never reads."""
    m = re.match(rf"(module\.)?layers\.{last}\.(attn\.\d+\.(gnn_[qkv])|multi_channel|mlp)\.", name)
    if m is None:
        return False
    part = m.group(3) or m.group(2)
    if kind == "ScoreNetworkA":  # the last layer's node output
        return part in ("gnn_v", "multi_channel")
    return kind == "ScoreNetworkX_GMH" and part in ("gnn_q", "gnn_k", "mlp")  # the last adjacency output


def map_state(theirs: dict, net, kind: str, last: int, src: str, what: str) -> tuple[dict, list[str]]:
    """The authors' state dict of one network as ``net``'s, and the names of the tensors left out as unused.

    Raises:
        CheckpointError: a tensor that does not map, a shape that differs, or a tensor of ``net`` not given.
    """
    own = net.state_dict()
    out, dropped = {}, []
    for name, value in theirs.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{src}: {what}[{name!r}] is a {type(value).__name__}, not a tensor")
        if _unused(name, kind, last):
            dropped.append(name)
            continue
        ours = our_name(name)
        if ours not in own:
            raise CheckpointError(f"{src}: {what} tensor {name!r} {tuple(value.shape)} has no counterpart in "
                                  f"graphdiff's {kind} (looked for {ours!r})")
        if tuple(own[ours].shape) != tuple(value.shape):
            raise CheckpointError(f"{src}: {what} tensor {name!r} is {tuple(value.shape)}, graphdiff's {ours!r} "
                                  f"is {tuple(own[ours].shape)}")
        out[ours] = value.detach().to(own[ours].dtype)
    for name, value in own.items():
        if name not in out:
            raise CheckpointError(f"{src}: {what} has no tensor for graphdiff's {name!r} {tuple(value.shape)}")
    return out, dropped


def _ema_state(ema, theirs: dict, src: str, what: str) -> dict:
    """The EMA's shadow parameters (in the order of the model's parameters) keyed like ``theirs``."""
    shadow = _need(ema, "shadow_params", what, src)
    if not isinstance(shadow, (list, tuple)) or len(shadow) != len(theirs):
        n = len(shadow) if isinstance(shadow, (list, tuple)) else type(shadow).__name__
        raise CheckpointError(f"{src}: {what}.shadow_params has {n} entries, the model {len(theirs)} tensors")
    out = {}
    for (name, value), s in zip(theirs.items(), shadow):
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != tuple(value.shape):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise CheckpointError(f"{src}: {what}.shadow_params entry for {name!r} is {got}, not "
                                  f"{tuple(value.shape)}")
        out[name] = s
    return out


def _net_specs(params_x: dict, params_adj: dict, src: str) -> tuple[dict, dict, str]:
    kind = _need(params_x, "model_type", "params_x", src)
    if kind not in _X_KEYS:
        raise CheckpointError(f"{src}: params_x.model_type {kind!r} is not ScoreNetworkX or ScoreNetworkX_GMH")
    x_net = {"type": "gcn" if kind == "ScoreNetworkX" else "gmh"}
    x_net.update({k: _need(params_x, k, "params_x", src) for k in _X_KEYS[kind]})
    if kind == "ScoreNetworkX_GMH":
        x_net["variant"] = "gdss"
    akind = _need(params_adj, "model_type", "params_adj", src)
    if akind != "ScoreNetworkA":
        raise CheckpointError(f"{src}: params_adj.model_type {akind!r} is not ScoreNetworkA")
    adj_net = {k: _need(params_adj, k, "params_adj", src) for k in _A_KEYS}
    adj_net["variant"] = "gdss"
    return x_net, adj_net, kind


def sample_section(data_name: str, cfg: dict, steps: int, molecule: bool, src: str) -> dict:
    """Our ``sample`` section for the authors' sampler settings (their sampling config for the molecule sets,
    else the checkpoint's own ``sampler`` / ``sample`` sections)."""
    if data_name in PAPER_SAMPLERS:
        sampler, sample = PAPER_SAMPLERS[data_name]
    elif isinstance(cfg.get("sampler"), dict):
        sampler, sample = cfg["sampler"], cfg.get("sample") or {}
    else:
        raise CheckpointError(f"{src}: model_config has no sampler section and {data_name!r} is not a dataset whose "
                              "sampling settings graphdiff knows (QM9, ZINC250k)")
    pred, corr = str(_need(sampler, "predictor", "sampler", src)), str(sampler.get("corrector", "None"))
    out: dict = {"steps": int(steps), "eps": float(sample.get("eps", 1.0e-4)),
                 "use_ema": bool(sample.get("use_ema", False))}
    if pred == "S4":
        out.update(sampler="s4", snr=float(sampler.get("snr", 0.15)), scale_eps=float(sampler.get("scale_eps", 0.7)))
    elif pred in ("Reverse", "Euler") and corr == "Langevin":
        out.update(sampler="pc", predictor=pred.lower(), snr=float(sampler["snr"]),
                   scale_eps=float(sampler["scale_eps"]), n_corrector=int(sampler.get("n_steps", 1)))
    elif pred == "Euler" and corr == "None":
        out.update(sampler="em")
    elif pred == "Reverse" and corr == "None":
        out.update(sampler="pc", predictor="reverse", n_corrector=0)
    else:
        raise CheckpointError(f"{src}: sampler predictor {pred!r} with corrector {corr!r} has no graphdiff sampler")
    if molecule:
        out["num_samples"] = 10_000  # the authors sample 10,000 molecules
    return out


def _schema(data_name: str, data: dict, dataset, src: str):
    """The checkpoint's schema with the node-count histogram of ``dataset``'s training split."""
    import numpy as np

    from ...schema import Schema

    max_nodes = int(_need(data, "max_node_num", "model_config.data", src))
    counts = np.asarray(dataset.split("train").num_nodes(), dtype=np.int64)
    if len(counts) == 0:
        raise CheckpointError(f"{src}: dataset {dataset.name} has an empty training split (no node counts)")
    if int(counts.max()) > max_nodes:
        raise CheckpointError(f"{src}: dataset {dataset.name} has graphs of {int(counts.max())} nodes, the "
                              f"checkpoint at most {max_nodes}")
    hist = tuple(int(v) for v in np.bincount(counts, minlength=max_nodes + 1))
    if data_name in ATOMS:
        return Schema(node_categories=ATOMS[data_name], edge_categories=BONDS, kind="molecule", max_nodes=max_nodes,
                      node_count_hist=hist)
    return Schema(node_categories=("node",), edge_categories=("none", "edge"), kind="graph", max_nodes=max_nodes,
                  node_count_hist=hist)


def convert(path: Path, out: Path, *, dataset: str | None = None, root=None) -> dict:
    """Convert the GDSS checkpoint ``path`` into the checkpoint folder ``out``; returns a summary."""
    from ...config import RunConfig
    from ...data import load_dataset
    from ...data.safe_pickle import plain, safe_load_torch
    from ...errors import DataError
    from ...nn.gdss_denoiser import GDSSDenoiser
    from ...train.checkpoint import save_checkpoint

    src = str(path)
    try:
        ck = safe_load_torch(path)
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{src}: holds a {type(ck).__name__}, not a GDSS checkpoint dict")
    for key in REQUIRED:
        _need(ck, key, "", src)
    cfg = plain(ck["model_config"])
    data = _need(cfg, "data", "model_config", src)
    data_name = str(_need(data, "data", "model_config.data", src))
    molecule = data_name in ATOMS
    x_net, adj_net, x_kind = _net_specs(plain(ck["params_x"]), plain(ck["params_adj"]), src)
    x_dim = int(_need(data, "max_feat_num", "model_config.data", src))
    if molecule and x_dim != len(ATOMS[data_name]):
        raise CheckpointError(f"{src}: model_config.data.max_feat_num is {x_dim}, {data_name} has "
                              f"{len(ATOMS[data_name])} elements")
    sde = _need(cfg, "sde", "model_config", src)
    sdes = {k: {f: _need(_need(sde, k, "model_config.sde", src), f, f"model_config.sde.{k}", src)
                for f in ("type", "beta_min", "beta_max", "num_scales")} for k in ("x", "adj")}

    name = dataset or DATASETS.get(data_name)
    if name is None:
        raise CheckpointError(f"{src}: GDSS dataset {data_name!r} has no graphdiff counterpart; pass --dataset")
    if name in DATASETS.values():
        from ...bench.offline import link_raw
        from ...data import data_root

        link_raw(data_root(root), [name])  # the offline copies of the raw files, when this machine has them
    ds = load_dataset(name, root=root)
    schema = _schema(data_name, data, ds, src)

    max_nodes = schema.max_nodes
    denoiser = GDSSDenoiser(x_net=x_net, adj_net=adj_net, x_dim=x_dim, max_nodes=max_nodes)
    a_kind, a_last = "ScoreNetworkA", int(adj_net["num_layers"]) - 1
    x_last = int(x_net["depth"]) - 1
    xs, x_drop = map_state(ck["x_state_dict"], denoiser.x_net, x_kind, x_last, src, "x_state_dict")
    as_, a_drop = map_state(ck["adj_state_dict"], denoiser.adj_net, a_kind, a_last, src, "adj_state_dict")
    model = {**{f"x_net.{k}": v for k, v in xs.items()}, **{f"adj_net.{k}": v for k, v in as_.items()}}
    denoiser.load_state_dict(model, strict=True)
    ema = None
    if "ema_x" in ck and "ema_adj" in ck:
        ex, _ = map_state(_ema_state(ck["ema_x"], ck["x_state_dict"], src, "ema_x"), denoiser.x_net, x_kind,
                          x_last, src, "ema_x")
        ea, _ = map_state(_ema_state(ck["ema_adj"], ck["adj_state_dict"], src, "ema_adj"), denoiser.adj_net,
                          a_kind, a_last, src, "ema_adj")
        ema = {**{f"x_net.{k}": v for k, v in ex.items()}, **{f"adj_net.{k}": v for k, v in ea.items()}}

    train_cfg = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    process = {"name": "gdss", "sde_x": sdes["x"], "sde_adj": sdes["adj"],
               "node_features": "types" if molecule else "degree", "adj_scale": 1.0,
               "eps": float(train_cfg.get("eps", 1.0e-5))}
    if molecule:
        process["node_decoding"] = "threshold"
    else:
        process["max_feat_num"] = x_dim
    sample = sample_section(data_name, cfg, int(sdes["adj"]["num_scales"]), molecule, src)
    if ema is None and sample["use_ema"]:
        raise CheckpointError(f"{src}: the authors sample with EMA weights but the checkpoint has no ema_x/ema_adj")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    config = RunConfig.from_dict({
        "name": f"gdss-imported-{name}",
        "description": f"the GDSS authors' checkpoint {Path(path).name} ({data_name}, sha256 {digest}...), "
                       "imported by graphdiff import-checkpoint; the paper's sampler settings",
        "dataset": ds.name, "process": process,
        "model": {"name": "gdss", "x_net": x_net, "adj_net": adj_net, "x_dim": x_dim, "max_nodes": max_nodes},
        "train": {"ema_decay": float(train_cfg.get("ema", 0.999))} if ema is not None else {},
        "sample": sample, "evaluate": {"protocol": "gdss", "reference": "test"},
        "schema": schema.to_dict(),
    }, where=src)
    save_checkpoint(out, config=config.to_dict(), model=denoiser, ema=ema)
    return {"format": "gdss", "dataset": data_name, "graphdiff_dataset": ds.name, "out": str(out),
            "tensors": len(model), "dropped_unused": x_drop + a_drop, "ema": ema is not None, "sample": sample,
            "node_categories": list(schema.node_categories)}
