"""Synthetic accessibility score (Ertl & Schuffenhauer, J. Cheminf. 1:8, 2009) via RDKit's Contrib ``sascorer``.

The scorer and its fragment-score table ship inside the RDKit wheel (``RDConfig.RDContribDir/SA_Score``). The
module is loaded from that file; its ``fpscores.pkl.gz`` table is read through the project's restricted
unpickler (plain lists of numbers only) instead of a bare ``pickle.load``.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from functools import lru_cache

from rdkit import Chem
from rdkit.Chem import RDConfig

from ..data.safe_pickle import safe_loads
from ..errors import MissingFileError


def sa_source() -> str:
    """Path of the ``sascorer.py`` in use."""
    return os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")


@lru_cache(maxsize=1)
def _scorer():
    path = sa_source()
    table = os.path.join(os.path.dirname(path), "fpscores.pkl.gz")
    if not (os.path.isfile(path) and os.path.isfile(table)):
        raise MissingFileError(f"RDKit Contrib SA_Score not found at {os.path.dirname(path)} (needed for the SA score)")
    spec = importlib.util.spec_from_file_location("_graphdiff_rdkit_sascorer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with gzip.open(table, "rb") as fh:
        data = safe_loads(fh.read(), source=table)
    mod._fscores = {frag: float(row[0]) for row in data for frag in row[1:]}
    return mod


def sa_score(mol: Chem.Mol) -> float:
    """SA score in [1, 10] (1 = easy to make) of a sanitized molecule."""
    return float(_scorer().calculateScore(mol))
