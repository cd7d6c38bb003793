"""Launch-configuration sweep of the Triton edge-attention kernels on a GPU (issue 20).

For each product precision (bf16 inputs; fp32 inputs with TF32 products; by default not IEEE fp32, whose compiles
take about 30 s each) it times the forward kernel for each forward tile configuration (forward pass of the whole
route, no gradients), then, with the fastest forward, the forward+backward pass for each backward configuration,
against the eager reference at the same precision (batch 16, 8 heads, width 256, edge width 64, graphs of N/2..N
real nodes, as ``graphdiff bench run kernels``). Each row has the largest output and gradient difference from the
reference. The fastest configurations are written to ``--out`` (key ``best``), in the form of
``graphdiff.kernels.attention_triton.CONFIGS``; ``benchmarks/gpu_kernels.sh`` runs the suite with them. Changes
nothing in the package.

Usage: python benchmarks/gpu_attention_sweep.py --out OUT.json [--n 256] [--precisions bf16 tf32]
"""

from __future__ import annotations

import argparse
import json

FORWARD = [dict(BI=4, BJ=32, num_warps=8), dict(BI=2, BJ=32, num_warps=4), dict(BI=8, BJ=16, num_warps=8)]
BACKWARD = [dict(BI=2, BJ=32, RB=8, num_warps=8), dict(BI=1, BJ=32, RB=16, num_warps=4),
            dict(BI=4, BJ=32, RB=4, num_warps=8)]


def _sweep(prec: str, n: int, result: dict, save) -> list[dict]:
    """Rows of one precision appended to ``result["rows"]``; returns the fastest ``[forward, backward]``."""
    import torch
    import triton.testing

    from graphdiff.bench.kernel_routes import attention_inputs
    from graphdiff.kernels import attention_triton as at
    from graphdiff.kernels import edge_attention_reference

    names = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")
    configs = {k: tuple(dict(c) for c in v) for k, v in at.CONFIGS.items()}
    dtype = torch.bfloat16 if prec == "bf16" else torch.float32
    torch.set_float32_matmul_precision("highest" if prec == "ieee" else "high")
    inp = attention_inputs(16, n, 8, 256, 64, dtype, "cuda")
    inputs = [inp[k] for k in names]
    leaves = [a.requires_grad_() for i, a in enumerate(inputs) if i != 6]
    g = torch.Generator(device="cuda").manual_seed(1)
    want = edge_attention_reference(*inputs)
    grads = [torch.randn(w.shape, device="cuda", generator=g, dtype=w.dtype) for w in want]
    want_g = torch.autograd.grad(want, leaves, grads)
    want = [w.detach() for w in want]

    def fwd(fn):
        with torch.no_grad():
            return fn(*inputs)

    def train(fn):
        return torch.autograd.grad(fn(*inputs), leaves, grads)

    def diff(got, ref):
        return max(float((a.float() - b.float()).abs().max()) for a, b in zip(got, ref))

    def row(config, fn, with_train):
        r = {"precision": prec, "config": config}
        try:
            r["diff"] = diff(fwd(fn), want)
            r["fwd_ms"] = triton.testing.do_bench(lambda: fwd(fn), warmup=5, rep=30)
            if with_train:
                r["grad_diff"] = diff(train(fn), want_g)
                r["train_ms"] = triton.testing.do_bench(lambda: train(fn), warmup=3, rep=30)
        except Exception as exc:
            r["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        result["rows"].append(r)
        print(r, flush=True)
        save()
        return r

    ref = row("reference", edge_attention_reference, True)
    # a configuration whose outputs or gradients are off (by more than a few roundings at this precision) is
    # reported, never chosen
    scale = 2e-2 if prec == "bf16" else 1e-2 if prec == "tf32" else 1e-4
    tol = scale * (1 + max(float(w.abs().max()) for w in want))
    grad_tol = scale * (1 + max(float(w.abs().max()) for w in want_g))
    ref["tolerances"] = [tol, grad_tol]
    kernel = lambda *a: at.edge_attention_triton(*a, fallback=False)
    fwd_rows = []
    for c in FORWARD:
        at.CONFIGS[prec] = ({**c, "num_stages": 1}, configs[prec][1])
        fwd_rows.append((row({"forward": c}, kernel, False), c))
    ok = [(r["fwd_ms"], i) for i, (r, _) in enumerate(fwd_rows) if "fwd_ms" in r and r["diff"] <= tol]
    best_fwd = {**fwd_rows[min(ok)[1]][1], "num_stages": 1} if ok else configs[prec][0]
    bwd_rows = []
    for c in BACKWARD:
        at.CONFIGS[prec] = (best_fwd, {**c, "num_stages": 1})
        bwd_rows.append((row({"forward": best_fwd, "backward": c}, kernel, True), c))
    ok = [(r["train_ms"], i) for i, (r, _) in enumerate(bwd_rows)
          if "train_ms" in r and r["diff"] <= tol and r["grad_diff"] <= grad_tol]
    best_bwd = {**bwd_rows[min(ok)[1]][1], "num_stages": 1} if ok else configs[prec][1]
    at.CONFIGS[prec] = configs[prec]
    return [best_fwd, best_bwd]


def main() -> None:
    p = argparse.ArgumentParser(prog="benchmarks/gpu_attention_sweep.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="results file (.json)")
    p.add_argument("--n", type=int, default=256, help="nodes per graph slot (default 256)")
    p.add_argument("--precisions", nargs="+", default=["bf16", "tf32"], choices=["bf16", "tf32", "ieee"])
    args = p.parse_args()

    import torch
    import triton

    result = {"n": args.n, "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "triton": triton.__version__, "rows": [], "best": {}}

    def save():
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)

    for prec in args.precisions:
        result["best"][prec] = _sweep(prec, args.n, result, save)
        save()
    print("best", json.dumps(result["best"]), flush=True)


if __name__ == "__main__":
    main()
