"""Triton kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``, set before any kernel is
defined). Tests that need it take the ``interpreter`` fixture, which skips with the reason when ``triton`` does not
import or its interpreter cannot run a kernel on CPU tensors with this torch build."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def interpreter():
    from graphdiff.kernels.dispatch import triton_import_error

    if triton_import_error() is not None:
        pytest.skip(f"triton does not import ({triton_import_error()}); pip install 'graphdiff[kernels]'")
    if os.environ.get("TRITON_INTERPRET", "") in ("", "0"):
        pytest.skip("TRITON_INTERPRET is switched off in this environment")
    try:
        from graphdiff.kernels.scatter_triton import message_scatter_triton

        out = message_scatter_triton(torch.ones(3, 2), torch.tensor([0, 0, 1]), 2, "sum")
    except Exception as exc:  # a broken install or an interpreter that cannot read CPU tensors
        pytest.skip(f"Triton's interpreter cannot run a kernel on CPU tensors here: {type(exc).__name__}: {exc}")
    assert out.tolist() == [[2.0, 2.0], [1.0, 1.0]]
    return True
