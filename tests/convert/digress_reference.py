"""DiGress's GraphTransformer written out once more from the paper's equations, functional, over a state dict: the
reference the imported network is checked against (graphdiff.nn.digress_transformer is not used here)."""

import collections
import math

import torch
import torch.nn.functional as F


def digress_state(dx=16, de=8, dy=8, heads=4, ffx=32, ffe=16, ffy=16, layers=2, x_in=7, e_in=5, y_in=3, x_out=4,
                  e_out=5, y_extra=0, seed=0):
    """The tensors of DiGress's GraphTransformer (DeFoG: ``y_extra=64``, its time embedding), 'model.'-prefixed."""
    g = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()

    def lin(name, i, o):
        s = 1 / math.sqrt(max(i, 1))
        sd[f"model.{name}.weight"] = torch.randn(o, i, generator=g) * s
        sd[f"model.{name}.bias"] = torch.randn(o, generator=g) * 0.1

    def norm(name, d):
        sd[f"model.{name}.weight"] = 1 + 0.1 * torch.randn(d, generator=g)
        sd[f"model.{name}.bias"] = 0.1 * torch.randn(d, generator=g)

    for s, i, h, o in (("X", x_in, ffx, dx), ("E", e_in, ffe, de), ("y", y_in + y_extra, ffy, dy)):
        lin(f"mlp_in_{s}.0", i, h)
        lin(f"mlp_in_{s}.2", h, o)
    for k in range(layers):
        a = f"tf_layers.{k}.self_attn"
        for n in ("q", "k", "v"):
            lin(f"{a}.{n}", dx, dx)
        for n in ("e_add", "e_mul"):
            lin(f"{a}.{n}", de, dx)
        for n in ("y_e_mul", "y_e_add", "y_x_mul", "y_x_add"):
            lin(f"{a}.{n}", dy, dx)
        lin(f"{a}.y_y", dy, dy)
        lin(f"{a}.x_y.lin", 4 * dx, dy)
        lin(f"{a}.e_y.lin", 4 * de, dy)
        lin(f"{a}.x_out", dx, dx)
        lin(f"{a}.e_out", dx, de)
        lin(f"{a}.y_out.0", dy, dy)
        lin(f"{a}.y_out.2", dy, dy)
        for s, d, f in (("X", dx, ffx), ("E", de, ffe), ("_y", dy, ffy)):
            lin(f"tf_layers.{k}.lin{s}1", d, f)
            lin(f"tf_layers.{k}.lin{s}2", f, d)
            norm(f"tf_layers.{k}.norm{s}1", d)
            norm(f"tf_layers.{k}.norm{s}2", d)
    for s, d, h, o in (("X", dx, ffx, x_out), ("E", de, ffe, e_out), ("y", dy, ffy, 0)):
        lin(f"mlp_out_{s}.0", d, h)
        lin(f"mlp_out_{s}.2", h, o)
    return sd


def reference_forward(sd, X, E, y, mask, heads):
    """Logits ``(X, E)`` of DiGress's network on assembled inputs, from the paper's equations (App. B).

    Loops over graphs, node pairs are broadcast; pooling counts every slot (padding included) with the unbiased
    standard deviation, as the authors' code does."""
    p = {k[len("model."):]: v.double() for k, v in sd.items()}
    lin = lambda name, h: F.linear(h, p[f"{name}.weight"], p[f"{name}.bias"])  # noqa: E731
    ln = lambda name, h: F.layer_norm(h, h.shape[-1:], p[f"{name}.weight"], p[f"{name}.bias"], 1e-5)  # noqa: E731
    X, E, y = X.double(), E.double(), y.double()
    m = mask.double()
    mx, me = m[:, :, None], m[:, :, None, None] * m[:, None, :, None]
    x0, e0 = X, E
    h = torch.relu(lin("mlp_in_E.2", torch.relu(lin("mlp_in_E.0", E))))
    e = (h + h.transpose(1, 2)) / 2 * me
    x = torch.relu(lin("mlp_in_X.2", torch.relu(lin("mlp_in_X.0", X)))) * mx
    g = torch.relu(lin("mlp_in_y.2", torch.relu(lin("mlp_in_y.0", y))))
    n_layers = 1 + max(int(k.split(".")[1]) for k in p if k.startswith("tf_layers."))
    for i in range(n_layers):
        a = f"tf_layers.{i}.self_attn"
        dx = p[f"{a}.q.weight"].shape[0]
        df = dx // heads
        Q, K, V = lin(f"{a}.q", x) * mx, lin(f"{a}.k", x) * mx, lin(f"{a}.v", x) * mx
        Y = Q[:, :, None, :] * K[:, None, :, :] / math.sqrt(df)  # per channel, [B, N, N, dx]
        Y = Y * (lin(f"{a}.e_mul", e) * me + 1) + lin(f"{a}.e_add", e) * me
        new_e = lin(f"{a}.y_e_add", g)[:, None, None] + (lin(f"{a}.y_e_mul", g)[:, None, None] + 1) * Y
        new_e = lin(f"{a}.e_out", new_e) * me
        scores = Y.masked_fill(m[:, None, :, None] == 0, -math.inf)
        att = torch.softmax(scores, dim=2)  # over keys j, channel by channel
        wv = (att * V[:, None, :, :]).sum(2)
        new_x = lin(f"{a}.x_out", lin(f"{a}.y_x_add", g)[:, None] + (lin(f"{a}.y_x_mul", g)[:, None] + 1) * wv) * mx

        def pool(t):
            t = t.reshape(t.shape[0], -1, t.shape[-1])
            return torch.cat([t.mean(1), t.min(1).values, t.max(1).values, t.std(1, unbiased=True)], -1)

        new_g = lin(f"{a}.y_y", g) + lin(f"{a}.x_y.lin", pool(x)) + lin(f"{a}.e_y.lin", pool(e))
        new_g = lin(f"{a}.y_out.2", torch.relu(lin(f"{a}.y_out.0", new_g)))
        t = f"tf_layers.{i}"
        x = ln(f"{t}.normX1", x + new_x)
        e = ln(f"{t}.normE1", e + new_e)
        g = ln(f"{t}.norm_y1", g + new_g)
        x = ln(f"{t}.normX2", x + lin(f"{t}.linX2", torch.relu(lin(f"{t}.linX1", x))))
        e = ln(f"{t}.normE2", e + lin(f"{t}.linE2", torch.relu(lin(f"{t}.linE1", e))))
        g = ln(f"{t}.norm_y2", g + lin(f"{t}.lin_y2", torch.relu(lin(f"{t}.lin_y1", g))))
    kx, ke = p["mlp_out_X.2.weight"].shape[0], p["mlp_out_E.2.weight"].shape[0]
    out_x = lin("mlp_out_X.2", torch.relu(lin("mlp_out_X.0", x))) + x0[..., :kx]
    n = X.shape[1]
    out_e = (lin("mlp_out_E.2", torch.relu(lin("mlp_out_E.0", e))) + e0[..., :ke]) * (1 - torch.eye(n))[None, :, :,
                                                                                                          None]
    out_e = (out_e + out_e.transpose(1, 2)) / 2
    return out_x * mx, out_e * me
