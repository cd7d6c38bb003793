"""Where samples fall in the training distribution's density: the share in its lowest-density decile.

A fixed, model-free density estimate: the mean distance of a sample to its ``k`` nearest neighbours in a reference
set of training graphs (larger = lower density). Molecules use the Tanimoto distance of Morgan fingerprints
(radius 2, 2048 bits); other graphs the Euclidean distance of standardised statistics (node and edge counts,
density, mean and maximum degree, mean clustering, triangles per node). The threshold is the 90th percentile of
the same distance for held-out training graphs (not in the reference), so by construction about 10% of the
training distribution lies beyond it; the minority-guidance evaluation of Um et al. (ICLR 2024) counts the share
of generated samples beyond it, which is about 10% for a model that matches its data and more for one steered to
the tail. Invalid molecules (``None``) count as not beyond it; report validity beside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


def morgan_fingerprints(mols) -> list:
    """Morgan fingerprints (radius 2, 2048 bits) of RDKit molecules (``None`` stays ``None``)."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [None if m is None else gen.GetFingerprint(m) for m in mols]


def _graph_features(graphs) -> np.ndarray:
    import networkx as nx

    rows = []
    for g in graphs:
        n, m = g.number_of_nodes(), g.number_of_edges()
        deg = [d for _, d in g.degree()] or [0]
        tri = sum(nx.triangles(g).values()) / 3 if n else 0.0
        rows.append([n, m, nx.density(g) if n > 1 else 0.0, float(np.mean(deg)), float(max(deg)),
                     nx.average_clustering(g) if n else 0.0, tri / max(n, 1)])
    return np.asarray(rows, dtype=np.float64)


@dataclass
class DensityReference:
    """A reference set of training graphs and the low-density threshold (see the module docstring)."""

    kind: str  # "molecule" or "graph"
    reference: list | np.ndarray
    threshold: float
    k: int
    scale: tuple | None = None

    def knn_distance(self, samples) -> np.ndarray:
        """Mean distance of each sample to its ``k`` nearest reference graphs (``inf`` for an invalid molecule)."""
        if self.kind == "molecule":
            from rdkit import DataStructs

            out = []
            for fp in morgan_fingerprints(samples):
                if fp is None:
                    out.append(np.inf)
                    continue
                d = 1.0 - np.asarray(DataStructs.BulkTanimotoSimilarity(fp, self.reference))
                out.append(float(np.sort(d)[: self.k].mean()))
            return np.asarray(out)
        mu, sd = self.scale
        f = (_graph_features(samples) - mu) / sd
        d = np.sqrt(((f[:, None, :] - self.reference[None]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, : self.k].mean(1)

    def low_density_share(self, samples) -> float:
        """Share of ``samples`` beyond the threshold (invalid molecules are not)."""
        d = self.knn_distance(samples)
        return float(np.mean(np.isfinite(d) & (d > self.threshold)))


def density_reference(train, *, kind: str, k: int = 5, reference_size: int = 5000, held_out: int = 1000,
                      seed: int = 0) -> DensityReference:
    """Build a :class:`DensityReference` from training samples (RDKit molecules or networkx graphs): a seeded
    ``reference_size`` of them is the reference, ``held_out`` others set the 90th-percentile threshold."""
    if kind not in ("molecule", "graph"):
        raise ConfigError(f"density reference: kind must be 'molecule' or 'graph', got {kind!r}")
    train = [g for g in train if g is not None]
    if len(train) < k + 10:
        raise ConfigError(f"density reference: {len(train)} training samples; need at least {k + 10}")
    order = np.random.default_rng(seed).permutation(len(train))
    n_held = min(held_out, len(train) // 5)
    held = [train[i] for i in order[:n_held]]
    ref = [train[i] for i in order[n_held:n_held + reference_size]]
    if kind == "molecule":
        dr = DensityReference(kind, morgan_fingerprints(ref), 0.0, k)
    else:
        f = _graph_features(ref)
        mu, sd = f.mean(0), f.std(0) + 1e-9
        dr = DensityReference(kind, (f - mu) / sd, 0.0, k, (mu, sd))
    dr.threshold = float(np.quantile(dr.knn_distance(held), 0.9))
    return dr


__all__ = ["DensityReference", "density_reference", "morgan_fingerprints"]
