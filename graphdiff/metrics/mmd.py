"""Kernels, MMD^2 and the two standard graph-evaluation protocols.

Every figure is the biased (V-statistic) squared MMD, ``mean K(X,X) + mean K(Y,Y) - 2 mean K(X,Y)``, the
quantity GraphRNN, GDSS, SPECTRE and DiGress print (none of them takes the square root).

Kernels (``d`` is a distance between two vectors, ``sigma`` the bandwidth; ``K = exp(-d^2 / (2 sigma^2))``):
    - ``gaussian_emd``: d = earth mover's distance between two histograms on the integer line with ground
      distance ``|i - j| / distance_scaling`` (equal to the L1 distance of the cumulative sums for pmfs);
    - ``gaussian_tv``: d = total variation, ``sum |x - y| / 2``;
    - ``rbf``: d = Euclidean distance (GraphRNN's ``gaussian``).

Protocols (presets that reproduce the published conventions):
    - ``gdss`` (GraphRNN / GDSS ``evaluation/stats.py``): degree gaussian_emd sigma 1; clustering gaussian_emd
      sigma 0.1 with distance scaling 100 (bins); orbit rbf sigma 30 on mean orbit counts; spectral gaussian_emd
      sigma 1; histograms normalised by their sum.
    - ``spectre`` (SPECTRE / DiGress ``spectre_utils.py``): degree, clustering (sigma 0.1), orbit (sigma 30, not
      normalised), spectral, wavelet, all gaussian_tv (sigma 1 unless stated); histograms normalised by
      ``sum + 1e-6``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError


def _stack(samples: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    length = length or max(len(s) for s in samples)
    out = np.zeros((len(samples), length), dtype=np.float64)
    for i, s in enumerate(samples):
        out[i, : len(s)] = s
    return out


def _pairwise_distance(x: np.ndarray, y: np.ndarray, kernel: str, distance_scaling: float) -> np.ndarray:
    out = np.empty((len(x), len(y)))
    step = max(1, int(2e7 // max(1, len(y) * x.shape[1])))  # bound memory of the broadcast
    if kernel == "gaussian_emd":
        x, y = np.cumsum(x, 1), np.cumsum(y, 1)
    for i in range(0, len(x), step):
        xi = x[i:i + step, None, :]
        if kernel == "rbf":
            out[i:i + step] = np.sqrt(((xi - y[None]) ** 2).sum(-1))
        elif kernel == "gaussian_tv":
            out[i:i + step] = np.abs(xi - y[None]).sum(-1) / 2.0
        elif kernel == "gaussian_emd":
            out[i:i + step] = np.abs(xi - y[None]).sum(-1) / distance_scaling
        else:
            raise DataError(f"unknown kernel {kernel!r}; choose gaussian_emd, gaussian_tv or rbf")
    return out


def kernel_matrix(x: np.ndarray, y: np.ndarray, kernel: str, sigma: float, distance_scaling: float = 1.0):
    """``[len(x), len(y)]`` kernel values between rows of two equally wide matrices."""
    d = _pairwise_distance(x, y, kernel, distance_scaling)
    return np.exp(-d * d / (2.0 * sigma * sigma))


@dataclass(frozen=True)
class KernelSpec:
    """How one statistic is compared: kernel, bandwidth and histogram handling (written into every result)."""

    kernel: str
    sigma: float
    distance_scaling: float = 1.0
    is_hist: bool = True
    hist_eps: float = 0.0

    def prepare(self, samples: Sequence[np.ndarray], length: int) -> np.ndarray:
        x = _stack(samples, length)
        if self.is_hist:
            x = x / (x.sum(1, keepdims=True) + self.hist_eps)
        return x


PROTOCOLS: dict[str, dict[str, KernelSpec]] = {
    "gdss": {
        "degree": KernelSpec("gaussian_emd", 1.0),
        "clustering": KernelSpec("gaussian_emd", 0.1, distance_scaling=100.0),
        "orbit": KernelSpec("rbf", 30.0, is_hist=False),
        "spectral": KernelSpec("gaussian_emd", 1.0),
    },
    "spectre": {
        "degree": KernelSpec("gaussian_tv", 1.0, hist_eps=1e-6),
        "clustering": KernelSpec("gaussian_tv", 0.1, hist_eps=1e-6),
        "orbit": KernelSpec("gaussian_tv", 30.0, is_hist=False),
        "spectral": KernelSpec("gaussian_tv", 1.0, hist_eps=1e-6),
        "wavelet": KernelSpec("gaussian_tv", 1.0, hist_eps=1e-6),
    },
}
DEFAULT_STATS = {"gdss": ("degree", "clustering", "orbit"),
                 "spectre": ("degree", "clustering", "orbit", "spectral", "wavelet")}


def _mmd2_from_blocks(kxx, kyy, kxy) -> float:
    return float(kxx.mean() + kyy.mean() - 2.0 * kxy.mean())


def mmd2(x_samples, y_samples, spec: KernelSpec, *, bootstrap: int = 0, seed: int = 0,
         confidence: float = 0.95) -> dict:
    """Squared MMD between two sets of statistic vectors, with an optional bootstrap interval.

    The interval resamples both sets with replacement ``bootstrap`` times (kernel matrices are computed once).
    A resample repeats graphs, and a repeated graph's kernel value with itself inflates the biased (V-statistic)
    MMD^2, so the resampled values sit above the estimate (with a few dozen graphs often all of them). The
    reported interval is therefore the percentile interval of the resampled values shifted by their mean's excess
    over the estimate (``bootstrap_bias`` records it), clipped at 0: it describes the spread around the estimate.
    """
    if len(x_samples) == 0 or len(y_samples) == 0:
        raise DataError(f"MMD needs samples on both sides (got {len(x_samples)} and {len(y_samples)})")
    length = max(max(len(s) for s in x_samples), max(len(s) for s in y_samples))
    x, y = spec.prepare(x_samples, length), spec.prepare(y_samples, length)
    kxx = kernel_matrix(x, x, spec.kernel, spec.sigma, spec.distance_scaling)
    kyy = kernel_matrix(y, y, spec.kernel, spec.sigma, spec.distance_scaling)
    kxy = kernel_matrix(x, y, spec.kernel, spec.sigma, spec.distance_scaling)
    out = {"mmd2": _mmd2_from_blocks(kxx, kyy, kxy), "n_x": len(x), "n_y": len(y), **asdict(spec)}
    if bootstrap:
        rng = np.random.default_rng(seed)
        vals = np.empty(bootstrap)
        for b in range(bootstrap):
            i = rng.integers(0, len(x), len(x))
            j = rng.integers(0, len(y), len(y))
            vals[b] = _mmd2_from_blocks(kxx[np.ix_(i, i)], kyy[np.ix_(j, j)], kxy[np.ix_(i, j)])
        a = (1.0 - confidence) / 2.0
        bias = float(vals.mean() - out["mmd2"])
        out.update(ci_low=max(0.0, float(np.quantile(vals, a)) - bias), ci_high=float(np.quantile(vals, 1 - a)) - bias,
                   bootstrap=bootstrap, confidence=confidence, bootstrap_bias=bias,
                   interval="bootstrap percentile, re-centred on the estimate")
    return out


LONG_MMD = 3000  # generated + reference graphs from which graph_mmd prints a line per statistic


def graph_mmd(generated, reference, *, protocol: str = "gdss", stats: Sequence[str] | None = None,
              bootstrap: int = 100, seed: int = 0, workers: int = 1) -> dict:
    """MMD^2 of graph statistics between generated and reference ``networkx`` graphs under a protocol.

    Graphs with zero nodes are left out of the statistics (as in GDSS and SPECTRE) and counted in
    ``empty_generated``; if every generated graph is empty the figures are ``None`` with a reason.
    """
    from .graph_stats import compute_statistic

    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    stats = tuple(stats or DEFAULT_STATS[protocol])
    for s in stats:
        if s not in PROTOCOLS[protocol]:
            raise DataError(f"protocol {protocol!r} has no statistic {s!r}; it has {sorted(PROTOCOLS[protocol])}")
    if len(reference) == 0:
        raise DataError("the reference set is empty")
    gen = [g for g in generated if g.number_of_nodes() > 0]
    ref = [g for g in reference if g.number_of_nodes() > 0]
    result = {"protocol": protocol, "n_generated": len(generated), "n_reference": len(reference),
              "empty_generated": len(generated) - len(gen), "estimator": "biased MMD^2 (V-statistic)",
              "stats": {}}
    for s in stats:
        if not gen:
            result["stats"][s] = {"mmd2": None, "reason": "no non-empty generated graph"}
            continue
        if len(gen) + len(ref) >= LONG_MMD:  # minutes of work: say what is being computed
            from ..progress import stage

            stage(f"graph MMD: {s} of {len(gen):,} generated and {len(ref):,} reference graphs "
                  f"({bootstrap} bootstrap resamples)...")
        a = compute_statistic(gen, s, workers=workers)
        b = compute_statistic(ref, s, workers=workers)
        result["stats"][s] = mmd2(a, b, PROTOCOLS[protocol][s], bootstrap=bootstrap, seed=seed)
    return result
