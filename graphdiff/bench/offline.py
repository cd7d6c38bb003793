"""Offline runs: place the standard raw files from a folder (``--raw-from DIR`` / ``$GRAPHDIFF_RAW``) where the
dataset loaders look (``<root>/<name>/raw``), so every suite runs on a machine without network.

The folder has the layout of the project's offline copies (``gdss/``, ``spectre/``, ``qm9/``, ``zinc250k/``);
MOSES comes from the ``molsets`` wheel when it is installed. Files are symlinked, never copied or modified; a file
already in place is left alone (the loaders check its sha256 against the dataset card).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingFileError

# dataset name -> files under the offline folder to place in <root>/<name>/raw (MOSES comes from molsets)
RAW = {
    "community_small": ["gdss/community_small.pkl"], "ego_small": ["gdss/ego_small.pkl"],
    "enzymes": ["gdss/ENZYMES.pkl"], "grid": ["gdss/grid.pkl"],
    "planar": ["spectre/planar.pkl"], "sbm": ["spectre/sbm.pkl"],
    "qm9": ["qm9/qm9_smiles.csv.gz", "qm9/valid_idx_qm9.json"],
    "qm9_3d": ["qm9/qm9_3d_qm9pack.npz"],
    "zinc250k": ["zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", "zinc250k/valid_idx_zinc250k.json"],
    "moses": [],
}


def default_raw_from() -> Path | None:
    """``$GRAPHDIFF_RAW``, else ``$GRAPHDIFF_SHARED_DATASETS``, else ``../shared/datasets`` beside a source checkout,
    else ``/work/shared/datasets``; ``None`` when none exists (loaders then download)."""
    here = Path(__file__).resolve()
    for c in (os.environ.get("GRAPHDIFF_RAW"), os.environ.get("GRAPHDIFF_SHARED_DATASETS"),
              here.parents[3] / "shared" / "datasets" if len(here.parents) > 3 else None, "/work/shared/datasets"):
        if c and Path(c).is_dir():
            return Path(c)
    return None


def link_raw(root, names, raw_from=None) -> list[str]:
    """Symlink the raw files each dataset in ``names`` needs from ``raw_from`` (default :func:`default_raw_from`)
    into ``<root>/<name>/raw``; returns the links made. An explicit ``raw_from`` that is not a folder is an error;
    a file it lacks is left to the loader (which downloads it or names it)."""
    if raw_from is not None and not Path(raw_from).is_dir():
        raise MissingFileError(f"--raw-from {raw_from}: not a folder")
    src_root = Path(raw_from) if raw_from is not None else default_raw_from()
    if src_root is None:
        return []
    linked = []
    for name in names:
        for rel in RAW.get(name, []):
            src, dst = src_root / rel, Path(root) / name / "raw" / Path(rel).name
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src.resolve())
                linked.append(str(dst))
    return linked


__all__ = ["RAW", "link_raw", "default_raw_from"]
