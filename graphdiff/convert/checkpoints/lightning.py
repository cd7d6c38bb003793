"""DiGress / DeFoG Lightning checkpoints (``.ckpt``) against graphdiff's ``graph_transformer``.

A Lightning checkpoint is a ``torch.save`` of ``{"state_dict", "hyper_parameters", "epoch", "global_step", ...}``;
the network's tensors are the ``model.``-prefixed entries of ``state_dict`` and ``hyper_parameters`` holds the
run's Hydra config (``cfg``) beside dataset objects. It is read with the restricted unpickler; configuration and
project objects become inert records (:func:`graphdiff.data.safe_pickle.safe_load_torch` with ``records=True``).

Each tensor of DiGress's ``GraphTransformer`` (DeFoG's differs only in the input width of ``mlp_in_y``) is mapped
to its counterpart in :class:`graphdiff.nn.GraphTransformerDenoiser` by :data:`NAMES`, built with the sizes the
tensors imply. The layouts are not the same: DiGress modulates the attention of every channel by the edge features
(``e_mul``, ``e_add``: ``de -> dx``) and predicts graph features, while graphdiff keeps one attention score per
head beside an edge-width product (``e_mul``: ``de -> n_heads + de``, ``q_e``, ``k_e``, ``score_to_e``), so the
import stops at the first tensor that does not map, naming it. The mapping is kept as data so that a
DiGress-layout variant of the network can be added without touching the reading and checking.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import CheckpointError

LABELS = {"digress": "DiGress", "defog": "DeFoG"}
# DiGress / DeFoG tensor name (without "model.") -> ours; a layer index is written {i}
NAMES = {
    **{f"mlp_in_{a}.{j}": f"in_{b}.{j}" for a, b in (("X", "x"), ("E", "e"), ("y", "y")) for j in (0, 2)},
    **{f"mlp_out_{a}.{j}": f"out_{b}.{j}" for a, b in (("X", "x"), ("E", "e")) for j in (0, 2)},
    **{f"tf_layers.{{i}}.self_attn.{n}": f"layers.{{i}}.{n}"
       for n in ("q", "k", "v", "e_add", "e_mul", "y_e_add", "y_e_mul", "y_x_add", "y_x_mul", "x_out", "e_out",
                 "y_out.0", "y_out.2")},
    "tf_layers.{i}.self_attn.y_y": "layers.{i}.y_self",
    "tf_layers.{i}.self_attn.x_y.lin": "layers.{i}.x_pool",
    "tf_layers.{i}.self_attn.e_y.lin": "layers.{i}.e_pool",
    **{f"tf_layers.{{i}}.lin{a}{k}": f"layers.{{i}}.ff_{b}.{j}"
       for a, b in (("X", "x"), ("E", "e"), ("_y", "y")) for k, j in (("1", 0), ("2", 3))},
    **{f"tf_layers.{{i}}.norm{a}{k}": f"layers.{{i}}.norm_{b}{k}"
       for a, b in (("X", "x"), ("E", "e"), ("_y", "y")) for k in ("1", "2")},
}
_WHY = {"y_e_": "DiGress's FiLM of the edges by y is dy -> dx, graphdiff's dy -> de",
        "e_add": "DiGress modulates every channel's attention by the edges (de -> dx); graphdiff one score per head "
                 "beside an edge-width product (de -> n_heads + de)",
        "e_mul": "DiGress modulates every channel's attention by the edges (de -> dx); graphdiff one score per head "
                 "beside an edge-width product (de -> n_heads + de)",
        "e_out": "DiGress maps the dx-wide attention to the edges, graphdiff the de-wide edge update",
        "mlp_in": "the input features differ (DiGress's extra features are not graphdiff's)",
        "mlp_out_y": "graphdiff's network predicts no graph features"}


def our_name(name: str) -> str | None:
    """Our tensor name for a DiGress/DeFoG one (without ``model.``), or ``None`` when it has no counterpart."""
    m = re.match(r"(.*?)\.(weight|bias)$", name)
    if m is None:
        return None
    module, leaf = m.groups()
    layer = re.match(r"tf_layers\.(\d+)\.(.*)$", module)
    key = f"tf_layers.{{i}}.{layer.group(2)}" if layer else module
    target = NAMES.get(key)
    if target is None:
        return None
    return f"{target.format(i=layer.group(1)) if layer else target}.{leaf}"


def _why(name: str) -> str:
    return next((v for k, v in _WHY.items() if k in name), "the layouts differ")


def _size(tensors: dict, name: str, dim: int, src: str, label: str) -> int:
    if name not in tensors:
        raise CheckpointError(f"{src}: state_dict has no 'model.{name}' (not a {label} GraphTransformer)")
    return int(tensors[name].shape[dim])


def _network(tensors: dict, hp: dict, src: str, label: str):
    """Our graph transformer with the sizes DiGress's tensors imply (no extra features, no condition)."""
    from ...nn.transformer import GraphTransformerDenoiser

    layers = {int(m.group(1)) for k in tensors if (m := re.match(r"tf_layers\.(\d+)\.", k))}
    if not layers:
        raise CheckpointError(f"{src}: state_dict has no 'model.tf_layers.*' tensors (not a {label} GraphTransformer)")
    dx = _size(tensors, "tf_layers.0.self_attn.q.weight", 0, src, label)
    heads = None
    try:
        heads = hp["cfg"]["model"]["hidden_dims"]["n_head"]
    except (KeyError, TypeError):
        pass
    if not (isinstance(heads, int) and heads > 0 and dx % heads == 0):
        heads = next(h for h in (8, 4, 2, 1) if dx % h == 0)
    return GraphTransformerDenoiser(
        node_dim=_size(tensors, "mlp_out_X.2.weight", 0, src, label),
        edge_dim=_size(tensors, "mlp_out_E.2.weight", 0, src, label), max_nodes=1, n_layers=max(layers) + 1,
        hidden_x=dx, hidden_e=_size(tensors, "tf_layers.0.linE1.weight", 1, src, label),
        hidden_y=_size(tensors, "tf_layers.0.lin_y1.weight", 1, src, label), n_heads=heads,
        ff_x=_size(tensors, "tf_layers.0.linX1.weight", 0, src, label),
        ff_e=_size(tensors, "tf_layers.0.linE1.weight", 0, src, label),
        ff_y=_size(tensors, "tf_layers.0.lin_y1.weight", 0, src, label), extra_features=())


def convert(path: Path, out: Path, *, fmt: str, dataset: str | None = None, root=None) -> dict:
    """Map a DiGress/DeFoG checkpoint's tensors onto graphdiff's graph transformer.

    Raises:
        CheckpointError: always today, at the first tensor that does not map (or a file that is not a Lightning
            checkpoint of that network); the message names the file and the tensor.
    """
    import torch

    from ...data.safe_pickle import plain, safe_load_torch
    from ...errors import DataError

    src, label = str(path), LABELS[fmt]
    try:
        ck = safe_load_torch(path, records=True)
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(ck, dict) or "state_dict" not in ck:
        raise CheckpointError(f"{src}: no 'state_dict' (not a Lightning checkpoint)")
    sd = ck["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{src}: 'state_dict' is a {type(sd).__name__}, not a mapping of tensors")
    tensors = {k[len("model."):]: v for k, v in sd.items() if isinstance(k, str) and k.startswith("model.")}
    if not tensors:
        raise CheckpointError(f"{src}: state_dict has no 'model.' tensors (not a {label} checkpoint)")
    bad = next((k for k, v in tensors.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{src}: state_dict['model.{bad}'] is a {type(tensors[bad]).__name__}, not a tensor")
    hp = plain(ck.get("hyper_parameters") or {})
    own = _network(tensors, hp if isinstance(hp, dict) else {}, src, label).state_dict()
    # the transformer layers first: their layout, not the input width, is what decides
    order = sorted(tensors, key=lambda k: (not k.startswith("tf_layers."), list(tensors).index(k)))
    mapped = set()
    for name in order:
        value, target = tensors[name], our_name(name)
        if target is None or target not in own:
            raise CheckpointError(f"{src}: {label} tensor 'model.{name}' {tuple(value.shape)} has no counterpart in "
                                  f"graphdiff's graph_transformer ({_why(name)})")
        if tuple(own[target].shape) != tuple(value.shape):
            raise CheckpointError(f"{src}: {label} tensor 'model.{name}' {tuple(value.shape)} does not map onto "
                                  f"graphdiff's {target!r} {tuple(own[target].shape)} ({_why(name)})")
        mapped.add(target)
    first = next(k for k in own if k not in mapped)  # q_e, k_e, score_to_e have no DiGress counterpart
    raise CheckpointError(f"{src}: graphdiff's graph_transformer tensor {first!r} {tuple(own[first].shape)} has no "
                          f"{label} counterpart (graphdiff's per-head attention has no DiGress equivalent)")
