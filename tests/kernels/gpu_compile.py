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

ATTENTION_IN = ["S", "QE", "KE", "E", "MASK", "WM", "BM", "WA", "BA", "WO", "BO"]
SIZES = ["N", "H", "DE", "FE", "DO", "scale_e"]
SIZE_TYPES = ["i32"] * 5 + ["fp32"]


def attention_inputs(dt: str) -> list[str]:
    return [f"*{dt}"] * 4 + ["*i8"] + [f"*{dt}"] * 6


def _split(config: dict, prec: str) -> tuple[dict, dict]:
    """The kernel's compile-time sizes (8 heads, edge width 64) and Triton's launch options of ``config``."""
    options = {k: v for k, v in config.items() if k.startswith("num_")}
    tiles = {k: v for k, v in config.items() if not k.startswith("num_")}
    return dict(HP=16, DEP=64, FEP=64, DOP=64, PREC=prec, **tiles), options


def cases(dt: str, prec: str = "ieee"):
    """Every kernel's signature for inputs of ``dt``; ``dt="mixed"``: bf16 autocast, where the scores and node
    projections are bf16 and the edge features and weights fp32."""
    ins = attention_inputs(dt) if dt != "mixed" else ["*bf16"] * 3 + ["*fp32", "*i8"] + ["*fp32"] * 6
    nd, ed = ("bf16", "fp32") if dt == "mixed" else (dt, dt)  # node-sized / edge-sized tensors
    shapes, options = _split(attention.CONFIGS[prec][0], prec)
    fwd = dict(zip(ATTENTION_IN + ["PS", "EO"] + SIZES, ins + [f"*{nd}", f"*{nd}"] + SIZE_TYPES))
    yield attention._pair_film_fwd, fwd, shapes, options
    grads = ["GS", "GQE", "GKE", "GE", "DWM", "DBM", "DWA", "DBA", "DWO", "DBO"]
    bwd = dict(zip(ATTENTION_IN + ["GPS", "GEO"] + grads + SIZES,
                   ins + [f"*{nd}", f"*{nd}"] + [f"*{nd}", "*fp32", "*fp32", f"*{ed}"] + ["*fp32"] * 6 + SIZE_TYPES))
    shapes, options = _split(attention.CONFIGS[prec][1], prec)
    yield attention._pair_film_bwd, bwd, shapes, options
    if dt == "mixed":
        return
    seg = dict(VALUES=f"*{dt}", GATHER="*i64", WEIGHT=f"*{dt}", PTR="*i64", OUT=f"*{dt}", F="i32")
    yield scatter._segment_reduce, seg, dict(HAS_GATHER=True, HAS_WEIGHT=True, MEAN=True, BE=32, BF=128), {}
    dot = dict(A=f"*{dt}", A_INDEX="*i64", B=f"*{dt}", B_INDEX="*i64", OUT=f"*{dt}", M="i32", F="i32")
    yield scatter._message_dot, dot, dict(HAS_B_INDEX=True, BE=32, BF=128), {}


def _registers(ptx: str, arch: int) -> dict:
    """Registers per thread and spilled bytes from ptxas's report (``-v``), or ``{}`` where it cannot run."""
    import re
    import subprocess
    import tempfile

    try:
        from triton.backends.nvidia.compiler import get_ptxas

        ptxas = get_ptxas(arch).path
    except Exception:  # another triton layout: no report
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as fh:
        fh.write(ptx)
        fh.flush()
        run = subprocess.run([ptxas, "-v", f"--gpu-name=sm_{arch}a" if arch >= 90 else f"--gpu-name=sm_{arch}",
                              fh.name, "-o", "/dev/null"], capture_output=True, text=True)
    regs = re.search(r"Used (\d+) registers", run.stderr)
    spill = re.search(r"(\d+) bytes spill stores", run.stderr)
    return {"registers": int(regs.group(1)), "spill_bytes": int(spill.group(1))} if regs and spill else {}


def main(archs: list[int], dtypes: tuple[str, ...], precisions: tuple[str, ...]) -> None:
    for arch in archs:
        # fp32 inputs: the precisions asked for; bf16 inputs: bf16 tensor-core products
        for dt, prec in [("fp32", p) for p in precisions if "fp32" in dtypes] + [("bf16", "bf16"), ("mixed", "bf16")] \
                * ("bf16" in dtypes):
            for fn, signature, constexprs, options in cases(dt, prec):
                if prec not in ("ieee", "bf16") and not fn.__name__.startswith("_pair_film"):
                    continue  # the scatter kernels have no matrix products
                t = time.perf_counter()
                src = ASTSource(fn=fn, signature={**signature, **{k: "constexpr" for k in constexprs}},
                                constexprs=constexprs)
                kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
                print(json.dumps({"kernel": fn.__name__, "arch": arch, "dtype": dt, "precision": prec,
                                  "shared": kernel.metadata.shared,
                                  "cubin_bytes": len(kernel.asm["cubin"]), **_registers(kernel.asm["ptx"], arch),
                                  "seconds": round(time.perf_counter() - t, 1)}), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main([int(a) for a in args if not a.startswith("--")] or [90], ("fp32",) if "--fp32-only" in args else
         ("fp32", "bf16"), ("ieee", "tf32") if "--tf32" in args else ("ieee",))
