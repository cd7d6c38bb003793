"""The Triton kernels compile for an H100/H200-class GPU (sm_90; fp32 and bf16) without one: Triton's GPU pipeline down
to ptxas catches what the interpreter does not check (shapes of ``tl.dot``, types) and the shared memory stays
within what every sm_80+ GPU has (99 KB) with bf16 and IEEE fp32 products, within an H100/H200's 227 KB with TF32
ones, and no kernel spills more than 4 KB of registers; elsewhere ``auto`` falls back to the reference for a kernel
that does not fit. The first run compiles (about 40 s); later runs read Triton's cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphdiff.kernels.dispatch import triton_import_error

SCRIPT = Path(__file__).with_name("gpu_compile.py")


def test_kernels_compile_for_sm90_within_the_shared_memory_of_the_gpus_they_target():
    if triton_import_error() is not None:
        pytest.skip(f"triton does not import ({triton_import_error()})")
    from triton import knobs

    try:
        ptxas = knobs.nvidia.ptxas.path
    except Exception as exc:  # no NVIDIA backend in this triton build
        pytest.skip(f"triton has no NVIDIA backend here ({type(exc).__name__}: {exc})")
    if not ptxas or not os.access(ptxas, os.X_OK):
        pytest.skip("triton's bundled ptxas is not available")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, str(SCRIPT), "--tf32", "90"], capture_output=True,
                         text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert {r["kernel"] for r in rows} == {"_pair_film_fwd", "_pair_film_bwd", "_segment_reduce", "_message_dot"}
    assert {r["precision"] for r in rows if r["kernel"].startswith("_pair")} == {"ieee", "tf32", "bf16"}
    assert {r["kernel"] for r in rows if r["dtype"] == "mixed"} == {"_pair_film_fwd", "_pair_film_bwd"}  # autocast
    for r in rows:  # IEEE and bf16 products fit every sm_80+ GPU; TF32 ones (opt-in) an H100/H200's 227 KB
        assert r["cubin_bytes"] > 0 and r["shared"] <= (227 if r["precision"] == "tf32" else 99) * 1024, r
        if r["kernel"].startswith("_pair"):  # no collapse to a few registers with kilobytes of spills (ptxas does
            assert r["spill_bytes"] <= 4096, r  # that to IEEE tiles of 32+ pairs)
