"""Launch-configuration sweep of the Triton edge-attention kernel on a GPU (issue 20): keys per block, warps,
pipeline stages and the precision of the in-kernel matrix products (the same for the forward and the backward
kernel), forward and forward+backward at one size, against the eager reference. Monkeypatches
graphdiff.kernels.attention_triton's launch sizes; changes nothing in the package.
Usage: python benchmarks/gpu_attention_sweep.py --out OUT.json [--n 256] [--dtype float32]"""

from __future__ import annotations

import argparse
import itertools
import json


def main() -> None:
    p = argparse.ArgumentParser(prog="benchmarks/gpu_attention_sweep.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="results file (.json)")
    p.add_argument("--n", type=int, default=256, help="nodes per graph slot (default 256)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = p.parse_args()

    import torch
    import triton.testing

    from graphdiff.bench.kernel_routes import attention_inputs
    from graphdiff.kernels import attention_triton as at
    from graphdiff.kernels import edge_attention_reference

    inp = attention_inputs(16, args.n, 8, 256, 64, getattr(torch, args.dtype), "cuda")
    names = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")
    inputs = [inp[k] for k in names]
    leaves = [a.requires_grad_() for i, a in enumerate(inputs) if i != 6]
    with torch.no_grad():
        want = edge_attention_reference(*inputs)
    grads = [torch.randn_like(w) for w in want]

    def timed(fn):
        def fwd():
            with torch.no_grad():
                return fn(*inputs)

        def train():
            o = fn(*inputs)
            torch.autograd.grad(sum((a.float() * g).sum() for a, g in zip(o, grads)), leaves)

        got = fwd()
        diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(got, want))
        row = {"fwd_ms": triton.testing.do_bench(fwd, warmup=5, rep=40), "diff": diff}
        try:
            row["train_ms"] = triton.testing.do_bench(train, warmup=3, rep=40)
        except Exception as exc:
            row["train_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return row

    rows = [{"config": "reference", **timed(edge_attention_reference)}]
    print(rows[-1], flush=True)
    base = at._launch_sizes
    for bj, warps, stages, prec in itertools.product((16, 32, 64), (4, 8), (1,), ("ieee", "tf32")):
        def sizes(q, qe, e, w_out, config, bj=bj, warps=warps, stages=stages, prec=prec):
            return {**base(q, qe, e, w_out, config), "BJ": bj, "num_warps": warps, "num_stages": stages,
                    "PREC": prec}

        at._launch_sizes = sizes
        cfg = f"BJ={bj} warps={warps} stages={stages} {prec}"
        try:
            row = {"config": cfg, **timed(lambda *a: at.edge_attention_triton(*a, fallback=False))}
        except Exception as exc:
            text = str(exc).splitlines()[0][:120] if str(exc) else ""
            row = {"config": cfg, "error": f"{type(exc).__name__}: {text}"}
        rows.append(row)
        print(row, flush=True)
        with open(args.out, "w") as fh:
            json.dump({"n": args.n, "dtype": args.dtype, "device": torch.cuda.get_device_name(0), "rows": rows}, fh,
                      indent=1)
    at._launch_sizes = base


if __name__ == "__main__":
    main()
