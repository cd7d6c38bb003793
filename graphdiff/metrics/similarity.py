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


_WORDS: dict = {}
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per uint64 word (``np.bitwise_count`` where numpy has it)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    return _BYTE_POPCOUNT[words.view(np.uint8)].reshape(*words.shape, 8).sum(-1, dtype=np.uint8)


def _as_words(packed: np.ndarray) -> np.ndarray:
    """Packed fingerprint rows ``[n, bytes]`` as uint64 words ``[n, words]`` (zero-padded to whole words)."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    pad = -packed.shape[1] % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((len(packed), pad), np.uint8)], 1)
    return packed.view(np.uint64)


def _word_major(other: np.ndarray):
    """``(words-major copy [words, m], set bits per row as float32)`` of packed fingerprints, kept for the last
    set seen (the chunks of one call share it)."""
    import hashlib

    key = (other.shape, hashlib.sha1(np.ascontiguousarray(other).tobytes()).hexdigest())
    if key not in _WORDS:
        words = _as_words(other)
        _WORDS.clear()
        _WORDS[key] = (np.ascontiguousarray(words.T), _popcount(words).sum(1).astype(np.float32))
    return _WORDS[key]


def _max_tanimoto(rows: np.ndarray, other: np.ndarray) -> list[float]:
    """Per packed fingerprint of ``rows``, the max Tanimoto similarity to a packed fingerprint of ``other``.

    Intersections are popcounts of 64-bit words (exact integers), then the float32 arithmetic of
    :func:`_tanimoto_blocks`: the same values (0/0 counts as 1) at a fraction of the cost."""
    other_w, nb = _word_major(other)
    gen_w = _as_words(rows)
    na = _popcount(gen_w).sum(1).astype(np.float32)
    inter = np.empty(other_w.shape[1], dtype=np.uint16)
    out: list[float] = []
    for i in range(len(gen_w)):
        inter[:] = 0
        for k in np.flatnonzero(gen_w[i]):
            inter += _popcount(other_w[k] & gen_w[i, k])
        c = inter.astype(np.float32)
        union = na[i] + nb - c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(union > 0, c / union, np.float32(1.0))
        out.append(float(t.max()) if len(t) else float("-inf"))
    return out


def _tanimoto_chunk(args):
    """Per row of ``rows``: max similarity to ``other`` (mode "max") or ``(sum_j w_j T_ij, sum_j w_j T_ij^2)``."""
    rows, other, weights, mode = args
    if mode == "max":
        return _max_tanimoto(np.stack(rows) if isinstance(rows, list) else rows, other)
    rows, other = _unpack(rows), _unpack(other)
    out = []
    for _, t in _tanimoto_blocks(rows, other):
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


def nearest_similarity(gen_fps, ref_fps, *, _runner: _Runner | None = None) -> np.ndarray:
    """Per generated fingerprint, the max Tanimoto similarity to a reference fingerprint (float32 values)."""
    return np.asarray(_rows_map(_runner, _packed(gen_fps), _packed(ref_fps), None, "max"))


def snn(gen_fps, ref_fps, gen_weights=None, *, _runner: _Runner | None = None) -> float:
    """MOSES SNN: (weighted) mean over generated of the max Tanimoto similarity to the reference. Fingerprints are
    0/1 arrays ``[n, bits]`` (or lists of ``np.packbits`` rows)."""
    return float(np.average(nearest_similarity(gen_fps, ref_fps, _runner=_runner), weights=gen_weights))


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


