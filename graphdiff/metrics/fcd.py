"""Frechet ChemNet Distance with the ChemNet weights of the ``fcd`` package (shipped in its wheel)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import DataError

from . import _parallel
from ._parallel import _n_jobs, _Runner, _torch_threads
from .mol_validity import _check_samples, canonical_valid

FCD_PAD = 350

# ---------------------------------------------------------------------------------------------------------------
# FCD


def _fcd_model():
    import fcd as _fcd

    return _fcd.load_ref_model()


def _chemnet_rows(smiles: Sequence[str], device: str, batch_size: int) -> np.ndarray:
    import torch
    from fcd.utils import get_one_hot

    model = _fcd_model()
    out = np.zeros((len(smiles), 512), dtype=np.float32)
    short = [i for i, s in enumerate(smiles) if len(s) + 1 <= FCD_PAD]
    long_ = [i for i, s in enumerate(smiles) if len(s) + 1 > FCD_PAD]
    groups = [short[k:k + batch_size] for k in range(0, len(short), batch_size)] + [[i] for i in long_]
    model.to(device)
    try:
        with torch.no_grad():
            for idx in groups:
                pad = max(FCD_PAD, max(len(smiles[i]) + 1 for i in idx))
                x = np.stack([get_one_hot(smiles[i], pad_len=pad) for i in idx]) / 35.0  # fcd: features / n_vocab
                xt = torch.from_numpy(x.astype(np.float32)).transpose(1, 2).to(device)
                out[idx] = model(xt).cpu().numpy()
    finally:
        model.to("cpu")
    return out


def _chemnet_chunk(args):
    items, batch_size = args
    import torch

    torch.set_num_threads(1)  # worker process: one thread each (as torch's own DataLoader workers)
    return list(_chemnet_rows(items, "cpu", batch_size))


def chemnet_activations(smiles: Sequence[str], *, device: str | None = None, batch_size: int = 512,
                        n_jobs: int | None = 1, _runner: _Runner | None = None, _bar=None) -> np.ndarray:
    """ChemNet penultimate activations ``[n, 512]`` (float32) of SMILES strings: ``fcd.get_predictions`` with the
    one-hot batches built directly (pad 350; a longer string is padded to its own length + 1). On CPU each process
    runs ChemNet single-threaded; ``n_jobs`` processes share large inputs. ``_bar`` (a progress object) counts
    the molecules done."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    smiles = list(smiles)
    if str(device) != "cpu":
        out = _chemnet_rows(smiles, device, batch_size)
    else:
        own = _runner is None
        runner = _Runner(_n_jobs(n_jobs)) if own else _runner
        try:
            if runner.n_jobs > 1 and len(smiles) >= _parallel._PARALLEL_MIN:
                return np.stack(runner.map(_chemnet_chunk, smiles, batch_size, bar=_bar))
            with _torch_threads(1):
                out = _chemnet_rows(smiles, "cpu", batch_size)
        finally:
            if own:
                runner.close()
    if _bar is not None:
        _bar.update(len(smiles))
    return out


def chemnet_stats(smiles: Sequence[str], weights=None, **kw) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of ChemNet activations; ``weights`` are integer multiplicities of the strings."""
    act = chemnet_activations(smiles, **kw).astype(np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.int64)
    mu = np.average(act, axis=0, weights=w)
    sigma = np.cov(act, rowvar=False, fweights=w)
    return mu, sigma


def frechet_distance(stats_a, stats_b) -> float:
    """``||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2})`` of two Gaussians ``(mu, S)``.

    ``Tr((S_a S_b)^{1/2})`` is the sum of square roots of the eigenvalues of the symmetric PSD matrix
    ``S_a^{1/2} S_b S_a^{1/2}`` (same spectrum as ``S_a S_b``): two symmetric eigendecompositions instead of the
    general ``scipy.linalg.sqrtm`` that ``fcd`` uses (same value to rounding, faster, and defined for singular
    covariances; eigenvalues below the numerical rank threshold count as 0)."""
    import torch

    mu_a, s_a = np.asarray(stats_a[0], np.float64), np.asarray(stats_a[1], np.float64)
    mu_b, s_b = np.asarray(stats_b[0], np.float64), np.asarray(stats_b[1], np.float64)
    with _torch_threads(1):
        d, u = torch.linalg.eigh(torch.from_numpy((s_a + s_a.T) / 2))
        root_a = (u * torch.sqrt(torch.clamp(d, min=0.0))) @ u.T
        m = root_a @ torch.from_numpy(s_b) @ root_a
        ev = torch.linalg.eigvalsh((m + m.T) / 2).numpy()
    ev[ev < ev.max(initial=0.0) * len(ev) * np.finfo(np.float64).eps] = 0.0  # numerical zeros (rank-deficient S)
    tr_sqrt = float(np.sqrt(ev).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)


def fcd(generated, reference, *, isomeric: bool = False, device: str | None = None, n_jobs: int | None = 1) -> float:
    """FCD between the canonical SMILES of the valid (strict) molecules of two sample lists (duplicates kept).

    Raises :class:`DataError` for an empty list or fewer than 2 valid molecules on a side."""
    sides = []
    for name, samples in (("generated", generated), ("reference", reference)):
        can = [c for c in canonical_valid(_check_samples(samples, name), isomeric=isomeric) if c]
        if len(can) < 2:
            raise DataError(f"FCD: {name} has {len(can)} valid molecule(s); at least 2 are needed")
        cnt = Counter(can)
        sides.append(chemnet_stats(list(cnt), list(cnt.values()), device=device, n_jobs=n_jobs))
    return frechet_distance(*sides)


