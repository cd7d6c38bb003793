"""A property oracle for molecules: a predictor of a numeric property from the clean molecular graph that shares
nothing with the diffusion models it judges.

Property targeting is scored by how close an independent predictor puts the generated molecules to the target;
scoring with the guidance regressor itself would reward the samples for fooling the network that steered them. The
oracle here is scikit-learn's histogram gradient boosting (``HistGradientBoostingRegressor``) on RDKit features of
the sanitized molecule: Morgan count fingerprints (radius 2, folded to ``bits``) and eight 2D descriptors
(molecular weight, Crippen logP, TPSA, H-bond donors and acceptors, rotatable bonds, ring count, fraction sp3).
:meth:`PropertyOracle.fit` holds out a seeded share of the molecules and records the oracle's own mean absolute
error on them beside that of always predicting the training mean, so a table can say how far to trust it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

DESCRIPTORS = ("MolWt", "MolLogP", "TPSA", "NumHDonors", "NumHAcceptors", "NumRotatableBonds", "RingCount",
               "FractionCSP3")


def molecule_features(mols, bits: int = 1024) -> np.ndarray:
    """``[len(mols), bits + 8]`` float32 features of sanitized RDKit molecules (rows of NaN for ``None``)."""
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    fns = [getattr(Descriptors, name) for name in DESCRIPTORS]
    out = np.full((len(mols), bits + len(fns)), np.nan, dtype=np.float32)
    for i, m in enumerate(mols):
        if m is None:
            continue
        out[i, :bits] = gen.GetCountFingerprintAsNumPy(m)
        out[i, bits:] = [f(m) for f in fns]
    return out


@dataclass
class PropertyOracle:
    """A fitted oracle of one property (see the module docstring); ``info`` holds its held-out errors."""

    name: str
    model: object = None
    bits: int = 1024
    info: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, name: str, mols, values, *, held_out: float = 0.1, seed: int = 0, bits: int = 1024,
            max_iter: int = 300) -> "PropertyOracle":
        """Fit on sanitized molecules ``mols`` (``None`` rows and non-finite values are dropped) with a seeded
        ``held_out`` share kept aside for the recorded errors."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        values = np.asarray(values, dtype=np.float64)
        if len(values) != len(mols):
            raise ConfigError(f"oracle {name!r}: {len(mols)} molecules but {len(values)} values")
        keep = [i for i, m in enumerate(mols) if m is not None and np.isfinite(values[i])]
        if len(keep) < 50:
            raise ConfigError(f"oracle {name!r}: {len(keep)} usable molecules; need at least 50")
        if not 0 < held_out < 0.5:
            raise ConfigError(f"oracle {name!r}: held_out must be in (0, 0.5), got {held_out}")
        order = np.random.default_rng(seed).permutation(keep)
        n_test = max(10, int(round(held_out * len(order))))
        test, train = order[:n_test], order[n_test:]
        feats = molecule_features([mols[i] for i in order], bits)
        f_test, f_train = feats[:n_test], feats[n_test:]
        model = HistGradientBoostingRegressor(max_iter=max_iter, random_state=seed)
        model.fit(f_train, values[train])
        err = np.abs(model.predict(f_test) - values[test])
        oracle = cls(name=name, model=model, bits=bits)
        oracle.info = {"train": int(len(train)), "held_out": int(n_test), "held_out_mae": float(err.mean()),
                       "held_out_mae_mean": float(np.abs(values[train].mean() - values[test]).mean()),
                       "std": float(values[train].std()), "model": f"HistGradientBoostingRegressor(max_iter="
                       f"{max_iter}) on Morgan counts (radius 2, {bits} bits) + {len(DESCRIPTORS)} descriptors"}
        return oracle

    def predict(self, mols) -> np.ndarray:
        """One prediction per molecule (NaN for ``None``)."""
        feats = molecule_features(mols, self.bits)
        out = np.full(len(mols), np.nan)
        ok = ~np.isnan(feats[:, 0])
        if ok.any():
            out[ok] = self.model.predict(feats[ok])
        return out


__all__ = ["PropertyOracle", "molecule_features", "DESCRIPTORS"]
