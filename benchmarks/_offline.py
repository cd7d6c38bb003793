"""Where the benchmarks find the offline copies of the standard files, and which files each dataset needs."""

from __future__ import annotations

import os
from pathlib import Path

# dataset name -> files under the offline folder to place in <root>/<name>/raw (MOSES comes from molsets)
RAW = {
    "community_small": ["gdss/community_small.pkl"], "ego_small": ["gdss/ego_small.pkl"],
    "enzymes": ["gdss/ENZYMES.pkl"], "grid": ["gdss/grid.pkl"],
    "planar": ["spectre/planar.pkl"], "sbm": ["spectre/sbm.pkl"],
    "qm9": ["qm9/qm9_smiles.csv.gz", "qm9/valid_idx_qm9.json"],
    "zinc250k": ["zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", "zinc250k/valid_idx_zinc250k.json"],
    "moses": [],
}


def default_raw_from() -> Path:
    """$GRAPHDIFF_SHARED_DATASETS, else ../shared/datasets beside the repository, else /work/shared/datasets."""
    for c in (os.environ.get("GRAPHDIFF_SHARED_DATASETS"), Path(__file__).resolve().parents[2] / "shared" / "datasets",
              "/work/shared/datasets"):
        if c and Path(c).is_dir():
            return Path(c)
    return Path("/work/shared/datasets")


def link_raw(root: Path, names, raw_from: Path | None = None) -> list[str]:
    """Symlink the offline copies each dataset needs into ``<root>/<name>/raw``; returns the files linked."""
    raw_from = Path(raw_from) if raw_from is not None else default_raw_from()
    linked = []
    for name in names:
        for rel in RAW.get(name, []):
            src, dst = raw_from / rel, Path(root) / name / "raw" / Path(rel).name
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src.resolve())
                linked.append(str(dst))
    return linked
