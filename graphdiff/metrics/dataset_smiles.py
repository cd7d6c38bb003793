"""The SMILES of a molecule dataset's splits, as the molecule metrics compare samples with them.

The reference figures are defined on the canonical SMILES (:func:`graphdiff.metrics.mol_validity._canon`) of the
molecules decoded from the stored graphs. Decoding costs about 0.4 ms a molecule, i.e. minutes for MOSES's 1.76
million, and its result is canonicalised again anyway. For datasets read from SMILES files, the raw rows give the
same canonical SMILES without decoding, so :func:`split_smiles` returns the raw rows (to be canonicalised by the
metrics, which cache the result on disk) when

1. every row of the raw files became one stored graph, in order (no invalid rows; the files present have the
   sha256 recorded when the dataset was processed), and
2. for a seeded random sample of ``check`` rows of the split, the canonical SMILES of the row equals that of its
   decoded graph.

(MOSES, RDKit 2026.09.1: all 1,760,737 rows give the same canonical SMILES both ways. The raw rows themselves
are not all canonical: 36 test and 276 training rows differ from their canonical form, so they are always
canonicalised.) Otherwise the split is decoded (cached beside the processed store,
:func:`graphdiff.metrics.evaluate.dataset_smiles`). Which route was taken is recorded with the result.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from ..errors import GraphdiffError

CHECK_ROWS = 1000

_RAW_CACHE: dict = {}


@dataclass
class SplitSmiles:
    """SMILES of one split (to be canonicalised) and where they came from (``how``, recorded in the result)."""

    smiles: list
    how: str


def aligned_raw_smiles(ds) -> list[str] | None:
    """The raw SMILES row of every stored graph (store order), or ``None`` when rows and graphs do not align."""
    from ..data.base import sha256_file
    from ..data.files import open_text
    from ..data.molecules import _SmilesDataset

    if not isinstance(ds, _SmilesDataset):
        return None
    key = (str(ds.processed_dir), len(ds.store))
    if key in _RAW_CACHE:
        return _RAW_CACHE[key]
    info = ds.info
    raw_files = info.get("raw_files") or {}
    if (info.get("invalid") or {}).get("count", 1) != 0 or not raw_files:
        return None
    if not all((ds.raw_dir / name).is_file() for name in raw_files):
        return None  # never download here
    try:
        sources, _ = ds.sources()
    except (GraphdiffError, OSError):
        return None
    out: list[str] = []
    for src in sources:
        if raw_files.get(src.path.name) != sha256_file(src.path):
            return None
        with open_text(src.path, "SMILES text") as fh:
            col = None
            if src.header:
                head = [h.strip().lower() for h in fh.readline().rstrip("\r\n").split(",")]
                if "smiles" not in head:
                    return None
                col = head.index("smiles")
            for r, line in enumerate(itertools.islice(fh, ds.limit)):
                if r in src.skip:
                    continue
                s = line.rstrip("\r\n")
                if col is not None:
                    fields = s.split(",")
                    s = fields[col] if len(fields) > col else ""
                out.append(s.strip())
    if len(out) != len(ds.store):
        return None
    _RAW_CACHE.clear()
    _RAW_CACHE[key] = out
    return out


def _canonical(smiles: str) -> str | None:
    from .mol_features import _canon_chunk

    return _canon_chunk(([smiles], False))[0]


def _decoded_canonical(ds, i: int) -> str | None:
    from ..convert.rdkit import graph_to_mol, mol_to_smiles

    return _canonical(mol_to_smiles(graph_to_mol(*ds.store.graph(int(i)), ds.schema)) or "")


def split_smiles(ds, split: str, *, check: int = CHECK_ROWS, seed: int = 0, workers: int | None = None) -> SplitSmiles:
    """The SMILES of ``ds``'s ``split`` (not canonical yet): its raw rows when they give the canonical SMILES of
    the stored graphs (see the module docstring), else the decoded molecules."""
    part = ds.split(split)
    idx = np.asarray(part._idx)
    raw = aligned_raw_smiles(ds)
    if raw is not None and len(idx):
        pick = np.random.default_rng(seed).choice(len(idx), min(check, len(idx)), replace=False)
        bad = next((int(idx[j]) for j in pick if _decoded_canonical(ds, idx[j]) != _canonical(raw[int(idx[j])])),
                   None)
        if bad is None:
            how = (f"raw file rows, canonicalised (a row and its stored graph give the same canonical SMILES: "
                   f"checked on {len(pick):,} random rows, seed {seed})")
            return SplitSmiles([raw[int(i)] for i in idx], how)
        why = f"raw row of graph {bad} and the graph give different canonical SMILES"
    else:
        why = "raw rows unavailable or not aligned with the stored graphs"
    return SplitSmiles(dataset_smiles(part, workers), f"decoded from the stored graphs ({why})")


# ---- decoding the stored graphs (datasets without usable raw rows) ----------------------------------
_DECODE = {}


def _decode_range(bounds):
    from ..convert.rdkit import graph_to_mol, mol_to_smiles

    store, schema = _DECODE["store"], _DECODE["schema"]
    return [mol_to_smiles(graph_to_mol(*store.graph(i), schema)) or "" for i in range(*bounds)]


def dataset_smiles(ds, workers: int | None = None) -> list[str]:
    """Canonical SMILES of every molecule of a dataset split, decoded from the stored graphs (cached beside the
    processed store as ``smiles.txt`` for the whole dataset; decoded in ``workers`` forked processes)."""
    cache = ds.processed_dir / "smiles.txt"
    if not cache.is_file():
        import multiprocessing as mp

        from ..progress import progress, stage

        n = len(ds.store)
        workers = workers or os.cpu_count() or 1
        step = 20_000
        bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
        _DECODE.update(store=ds.store, schema=ds.schema)
        if n > step:
            stage(f"decoding the {n:,} molecules of {ds.name} to SMILES (once: kept in {cache})")
        try:
            with progress(total=n, desc=f"{ds.name} SMILES", unit="mol", disable=n <= step) as bar:
                if workers > 1 and n > step and "fork" in mp.get_all_start_methods():
                    with mp.get_context("fork").Pool(workers) as pool:
                        parts = []
                        for part in pool.imap(_decode_range, bounds):
                            parts.append(part)
                            bar.update(len(part))
                else:
                    parts = []
                    for b in bounds:
                        parts.append(_decode_range(b))
                        bar.update(len(parts[-1]))
        finally:
            _DECODE.clear()
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("\n".join(s for part in parts for s in part) + "\n", encoding="utf-8")
        os.replace(tmp, cache)
    full = cache.read_text(encoding="utf-8").split("\n")
    return [full[int(i)] for i in ds._idx]


