"""Where the Triton kernels run in these tests: on a CUDA device when there is one (the compiled kernels), otherwise
on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``, set here before any kernel is defined). Tests
take the ``device`` fixture, which skips with the reason when ``triton`` does not import or cannot run a kernel
there (an interpreter that cannot read CPU tensors with this torch build, say)."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def device() -> str:
    from graphdiff.kernels.dispatch import triton_import_error

    if triton_import_error() is not None:
        pytest.skip(f"triton does not import ({triton_import_error()}); pip install 'graphdiff[kernels]'")
    interpreting = os.environ.get("TRITON_INTERPRET", "") not in ("", "0")
    where = "cpu" if interpreting or not torch.cuda.is_available() else "cuda"
    if where == "cpu" and not interpreting:
        pytest.skip("no CUDA device and TRITON_INTERPRET is switched off")
    try:
        from graphdiff.kernels.scatter_triton import message_scatter_triton

        out = message_scatter_triton(torch.ones(3, 2, device=where), torch.tensor([0, 0, 1], device=where), 2, "sum")
    except Exception as exc:  # a broken install, or an interpreter that cannot read CPU tensors
        pytest.skip(f"Triton cannot run a kernel on {where} tensors here: {type(exc).__name__}: {exc}")
    assert out.tolist() == [[2.0, 2.0], [1.0, 1.0]]
    return where
