"""Compile every Triton kernel of graphdiff.kernels for an NVIDIA GPU architecture without a GPU (Triton's
front end, LLVM and the ptxas bundled with the triton wheel): catches what the interpreter does not check (shapes
of ``tl.dot``, types, shared memory). Prints one JSON line per kernel and dtype: shared memory in bytes.

Run as ``python tests/kernels/gpu_compile.py [--fp32-only] [--tf32] [ARCH ...]`` (default 90; ``--tf32`` adds the
attention kernels with TF32 products); used by
``test_gpu_compile.py``. The signatures here follow the kernels' arguments (update both together).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from graphdiff.kernels import attention_triton as attention  # noqa: E402
from graphdiff.kernels import scatter_triton as scatter  # noqa: E402

ATTENTION_IN = ["Q", "K", "V", "QE", "KE", "E", "MASK", "WM", "BM", "WA", "BA", "WO", "BO"]
SIZES = ["N", "H", "DH", "DE", "FE", "DO", "scale", "scale_e"]
SIZE_TYPES = ["i32"] * 6 + ["fp32", "fp32"]


def attention_inputs(dt: str) -> list[str]:
    return [f"*{dt}"] * 6 + ["*i8"] + [f"*{dt}"] * 6


def _split(config: dict, prec: str) -> tuple[dict, dict]:
    """The kernel's compile-time sizes (8 heads x 32, edge width 64) and Triton's launch options of ``config``."""
    options = {k: v for k, v in config.items() if k.startswith("num_")}
    return dict(BJ=config["BJ"], HP=16, DHP=32, DEP=64, FEP=64, DOP=64, PREC=prec), options


def cases(dt: str, prec: str = "ieee"):
    shapes, options = _split(attention.FORWARD, prec)
    fwd = dict(zip(ATTENTION_IN + ["XO", "EO", "LSE"] + SIZES,
                   attention_inputs(dt) + [f"*{dt}", f"*{dt}", "*fp32"] + SIZE_TYPES))
    yield attention._edge_attention_fwd, fwd, shapes, options
    grads = ["DQ", "DK", "DV", "DQE", "DKE", "DEE", "DWM", "DBM", "DWA", "DBA", "DWO", "DBO"]
    bwd = dict(zip(ATTENTION_IN + ["XO", "LSE", "DXO", "DEO"] + grads + SIZES,
                   attention_inputs(dt) + [f"*{dt}", "*fp32", f"*{dt}", f"*{dt}"]
                   + [f"*{dt}", "*fp32", "*fp32", f"*{dt}", "*fp32", f"*{dt}"] + ["*fp32"] * 6 + SIZE_TYPES))
    shapes, options = _split(attention.BACKWARD, prec)
    yield attention._edge_attention_bwd, bwd, dict(ROWS=16, **shapes), options
    seg = dict(VALUES=f"*{dt}", GATHER="*i64", WEIGHT=f"*{dt}", PTR="*i64", OUT=f"*{dt}", F="i32")
    yield scatter._segment_reduce, seg, dict(HAS_GATHER=True, HAS_WEIGHT=True, MEAN=True, BE=32, BF=128), {}
    dot = dict(A=f"*{dt}", A_INDEX="*i64", B=f"*{dt}", B_INDEX="*i64", OUT=f"*{dt}", M="i32", F="i32")
    yield scatter._message_dot, dot, dict(HAS_B_INDEX=True, BE=32, BF=128), {}


def main(archs: list[int], dtypes: tuple[str, ...], precisions: tuple[str, ...]) -> None:
    for arch in archs:
        for dt, prec in ((d, p) for d in dtypes for p in precisions):
            for fn, signature, constexprs, options in cases(dt, prec):
                if prec != "ieee" and not fn.__name__.startswith("_edge_attention"):
                    continue  # the scatter kernels have no matrix products
                t = time.perf_counter()
                src = ASTSource(fn=fn, signature={**signature, **{k: "constexpr" for k in constexprs}},
                                constexprs=constexprs)
                kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
                print(json.dumps({"kernel": fn.__name__, "arch": arch, "dtype": dt, "precision": prec,
                                  "shared": kernel.metadata.shared,
                                  "cubin_bytes": len(kernel.asm["cubin"]),
                                  "seconds": round(time.perf_counter() - t, 1)}), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main([int(a) for a in args if not a.startswith("--")] or [90], ("fp32",) if "--fp32-only" in args else
         ("fp32", "bf16"), ("ieee", "tf32") if "--tf32" in args else ("ieee",))
