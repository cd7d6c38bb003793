"""Shared fixtures: offline copies of the standard files (skipped cleanly when absent), hypothesis graphs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# pytest -n 2 runs two workers on two cores: one intra-op thread each avoids oversubscription, under which small
# tensor operations were measured to slow down by two orders of magnitude
torch.set_num_threads(1)

# Triton reads TRITON_INTERPRET when it is first imported, which under pytest-xdist can be any test module's import
# of graphdiff (the kernel dispatch imports triton); so it is set here, before every test module, not only in
# tests/kernels/conftest.py. Without a GPU the kernels then run on CPU tensors through Triton's interpreter.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True, scope="session")
def _own_dataset_root(tmp_path_factory):
    """Every test reads and writes datasets under a fresh root of its session, never the user's
    ``~/.cache/graphdiff``: a test that passes only because an earlier run left a download there would fail on
    a new machine (tests that need the standard files link them with :func:`shared_root`)."""
    old = os.environ.get("GRAPHDIFF_DATA")
    os.environ["GRAPHDIFF_DATA"] = str(tmp_path_factory.mktemp("graphdiff_data"))
    yield
    if old is None:
        os.environ.pop("GRAPHDIFF_DATA", None)
    else:
        os.environ["GRAPHDIFF_DATA"] = old


def _find_shared() -> Path:
    """The offline copies of the standard files: $GRAPHDIFF_SHARED_DATASETS, else ../shared/datasets beside the
    repository, else /work/shared/datasets. Tests that need them skip when none exists."""
    candidates = [os.environ.get("GRAPHDIFF_SHARED_DATASETS"),
                  Path(__file__).resolve().parents[2] / "shared" / "datasets", "/work/shared/datasets"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return Path("/nonexistent/shared/datasets")


SHARED = _find_shared()

# dataset name -> files in SHARED to place in <root>/<name>/raw
RAW_FILES = {
    "community_small": ["gdss/community_small.pkl"],
    "ego_small": ["gdss/ego_small.pkl"],
    "enzymes": ["gdss/ENZYMES.pkl"],
    "grid": ["gdss/grid.pkl"],
    "planar": ["spectre/planar.pkl"],
    "sbm": ["spectre/sbm.pkl"],
    "qm9": ["qm9/qm9_smiles.csv.gz", "qm9/valid_idx_qm9.json"],
    "qm9_3d": ["qm9/qm9_3d_qm9pack.npz"],
    "zinc250k": ["zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", "zinc250k/valid_idx_zinc250k.json"],
}


def shared_root(tmp_path: Path, *names: str) -> Path:
    """A dataset root whose ``<name>/raw`` folders link to the shared offline copies; skips when absent."""
    root = tmp_path / "data"
    for name in names:
        raw = root / name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for rel in RAW_FILES[name]:
            src = SHARED / rel
            if not src.is_file():
                pytest.skip(f"offline copy {src} not present (../shared/datasets)")
            (raw / src.name).symlink_to(src)
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Make any download attempt fail loudly (tests never use the network)."""
    import urllib.request

    def refuse(*a, **k):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def one_error_line(capsys) -> str:
    """The one ``error: ...`` line a CLI failure printed to stderr (asserts there is exactly one)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]
