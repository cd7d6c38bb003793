"""Launch-configuration sweep of the Triton edge-attention kernel on a GPU (issue 20): keys per block, warps,
pipeline stages and the precision of the in-kernel matrix products (the same for the forward and the backward
kernel), forward and forward+backward at one size, against the eager reference. Monkeypatches
graphdiff.kernels.attention_triton's launch sizes; changes nothing in the package.
Usage: python benchmarks/gpu_attention_sweep.py OUT.json [N] [dtype]"""

from __future__ import annotations

import itertools
import json
import sys

import torch
import triton
import triton.testing

from graphdiff.bench.kernel_routes import attention_inputs
from graphdiff.kernels import attention_triton as at
from graphdiff.kernels import edge_attention_reference

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256
dtype = getattr(torch, sys.argv[3] if len(sys.argv) > 3 else "float32")
inp = attention_inputs(16, n, 8, 256, 64, dtype, "cuda")
names = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")
args = [inp[k] for k in names]
leaves = [a.requires_grad_() for i, a in enumerate(args) if i != 6]
with torch.no_grad():
    want = edge_attention_reference(*args)
grads = [torch.randn_like(w) for w in want]


def timed(fn):
    def fwd():
        with torch.no_grad():
            return fn(*args)

    def train():
        o = fn(*args)
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
        return {**base(q, qe, e, w_out, config), "BJ": bj, "num_warps": warps, "num_stages": stages, "PREC": prec}

    at._launch_sizes = sizes
    cfg = f"BJ={bj} warps={warps} stages={stages} {prec}"
    try:
        row = {"config": cfg, **timed(lambda *a: at.edge_attention_triton(*a, fallback=False))}
    except Exception as exc:
        row = {"config": cfg, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
    rows.append(row)
    print(row, flush=True)
    json.dump({"n": n, "dtype": str(dtype), "device": torch.cuda.get_device_name(0), "rows": rows},
              open(out, "w"), indent=1)
at._launch_sizes = base
