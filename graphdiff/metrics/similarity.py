"""Fingerprint similarity (SNN, IntDiv), count-vector cosine similarity (Frag, Scaf) and histogram KL."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


from ._parallel import _Runner

KL_BINS = 50
KL_PSEUDOCOUNT = 1.0

# ---------------------------------------------------------------------------------------------------------------
# similarity helpers
# Heavy numerics run single-threaded inside each process (parallelism comes from the process pool): multi-threaded
# BLAS / OpenMP collapse when the cores are shared with other work, single-threaded kernels degrade gracefully.
def _unpack(fps) -> np.ndarray:
    """0/1 float32 matrix from ``np.packbits`` rows (a list of rows or a 2-D uint8 array)."""
    return np.unpackbits(np.stack(fps) if isinstance(fps, list) else fps, axis=1).astype(np.float32)


def _tanimoto_blocks(a: np.ndarray, b: np.ndarray, block: int = 1024):
    """Yield ``(row slice, Tanimoto block)`` of the |a| x |b| similarity matrix of 0/1 rows (0/0 counts as 1, as
    MOSES). Intersections come from a sparse x dense product (fingerprints are sparse; no BLAS threads)."""
    import scipy.sparse as sp

    a = np.asarray(a, dtype=np.float32)
    bt = np.ascontiguousarray(np.asarray(b, dtype=np.float32).T)
    na, nb = a.sum(1), bt.sum(0)
    for i in range(0, len(a), block):
        inter = np.asarray(sp.csr_matrix(a[i:i + block]) @ bt)
        union = na[i:i + block, None] + nb[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(union > 0, inter / union, np.float32(1.0))
        yield slice(i, i + block), t


def _tanimoto_chunk(args):
    """Per row of ``rows``: max similarity to ``other`` (mode "max") or ``(sum_j w_j T_ij, sum_j w_j T_ij^2)``."""
    rows, other, weights, mode = args
    rows, other = _unpack(rows), _unpack(other)
    out = []
    for _, t in _tanimoto_blocks(rows, other):
        if mode == "max":
            out.extend(t.max(1).tolist())
        else:
            t = t.astype(np.float64)
            out.extend(zip((t @ weights).tolist(), ((t * t) @ weights).tolist()))
    return out


def _rows_map(runner: _Runner | None, rows: list, other: list, weights, mode: str) -> list:
    other = np.stack(other)
    if runner is None:
        return _tanimoto_chunk((rows, other, weights, mode))
    return runner.map(_tanimoto_chunk, rows, other, weights, mode)


def _packed(fps) -> list:
    """Lists of ``np.packbits`` rows pass through; a 0/1 matrix ``[n, bits]`` is packed."""
    if isinstance(fps, list) and (not fps or (isinstance(fps[0], np.ndarray) and fps[0].dtype == np.uint8)):
        return fps
    return list(np.packbits(np.asarray(fps).astype(bool), axis=1))


def snn(gen_fps, ref_fps, gen_weights=None, *, _runner: _Runner | None = None) -> float:
    """MOSES SNN: (weighted) mean over generated of the max Tanimoto similarity to the reference. Fingerprints are
    0/1 arrays ``[n, bits]`` (or lists of ``np.packbits`` rows)."""
    best = np.asarray(_rows_map(_runner, _packed(gen_fps), _packed(ref_fps), None, "max"))
    return float(np.average(best, weights=gen_weights))


def internal_diversity(fps, weights=None, *, _runner: _Runner | None = None) -> tuple[float, float]:
    """MOSES ``(IntDiv1, IntDiv2)`` of a multiset given as distinct fingerprints and their multiplicities."""
    packed = _packed(fps)
    w = np.ones(len(packed)) if weights is None else np.asarray(weights, dtype=np.float64)
    n = w.sum()
    sums = np.asarray(_rows_map(_runner, packed, packed, w, "sum"), dtype=np.float64).reshape(-1, 2)
    s1 = float(w @ sums[:, 0])
    return 1.0 - s1 / (n * n), 1.0 - float(w @ np.sqrt(sums[:, 1] / n)) / n


def cosine_similarity_counts(a: Counter, b: Counter) -> float | None:
    """Cosine similarity of two count dictionaries (missing keys are 0); ``None`` if either is empty."""
    if not a or not b:
        return None
    dot = sum(float(v) * b.get(k, 0) for k, v in a.items())
    na = math.sqrt(sum(float(v) * v for v in a.values()))
    nb = math.sqrt(sum(float(v) * v for v in b.values()))
    return dot / (na * nb)


def kl_histogram(ref: np.ndarray, gen: np.ndarray, ref_w=None, gen_w=None, *, bins: int = KL_BINS,
                 pseudocount: float = KL_PSEUDOCOUNT) -> float:
    """KL(reference || generated) of histograms on ``bins`` equal-width bins spanning both sets, with
    ``pseudocount`` added to every bin of both (natural log)."""
    lo, hi = float(min(ref.min(), gen.min())), float(max(ref.max(), gen.max()))
    if hi <= lo:
        return 0.0
    hr, _ = np.histogram(ref, bins=bins, range=(lo, hi), weights=ref_w)
    hg, _ = np.histogram(gen, bins=bins, range=(lo, hi), weights=gen_w)
    p = (hr + pseudocount) / (hr.sum() + pseudocount * bins)
    q = (hg + pseudocount) / (hg.sum() + pseudocount * bins)
    return float(np.sum(p * np.log(p / q)))


