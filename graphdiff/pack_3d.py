"""The measured part of a 3D model's card (``graphdiff models pack``): its samples scored by the 3D evaluator.

A 3D model (EQGAT-diff, SemlaFlow class: coordinates with atoms, charges and bonds) is scored as ``graphdiff
evaluate`` scores an ``.sdf`` of its samples: stability under the legacy MiDi / EQGAT-diff rule and the
GEOM-Drugs-Revisited rule, RDKit validity, uniqueness, novelty, and the bond-length, angle and torsion
Wasserstein-1 and composition distances against the dataset's test split (a file of the user's own: the whole
file). The dataset is read and checked for coordinates before any sample is drawn.
"""

from __future__ import annotations

import time
from pathlib import Path

from .errors import DataError

# the card's rows: the published tables' stability (legacy rule) first, then the revisited rule, validity, geometry
CARD_3D = (("molecule_stability_legacy", "molecule stability (legacy MiDi rule)"),
           ("atom_stability_legacy", "atom stability (legacy MiDi rule)"),
           ("molecule_stability_revisited", "molecule stability (revisited rule)"),
           ("atom_stability_revisited", "atom stability (revisited rule)"),
           ("validity", "validity (RDKit, whole molecule)"), ("connected", "one fragment"),
           ("uniqueness", "uniqueness"), ("novelty", "novelty"), ("bond_length_w1", "bond length W1 (A)"),
           ("bond_angle_w1", "bond angle W1 (degrees)"), ("torsion_w1", "torsion W1 (degrees)"),
           ("atom_type_tv", "element TV"), ("charge_tv", "charge TV"))
DRAWN = 8  # samples drawn to the card's samples.png


def is_3d(pipe) -> bool:
    """Whether the pipeline generates molecules with coordinates."""
    from .processes.mixed3d import Mixed3DProcess

    return isinstance(pipe.process, Mixed3DProcess)


def card_value(v) -> str:
    """A figure as the card's tables print it (``-`` for an undefined one)."""
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


def _split_words(split: str, used: int, size: int) -> str:
    where = "the whole file" if split == "all" else f"the {split} split"
    return f"a seeded subset of {used:,} molecules of {where}" if used < size else f"{used:,} molecules of {where}"


def measure_3d(pipe, dataset: str, options: dict, *, samples: int, root=None, threads_line: str = "") -> dict:
    """Sample ``samples`` molecules (seed 0) and score them against ``dataset``.

    Returns:
        ``{"table", "line", "data", "metrics", "write"}`` for the card; ``write(folder)`` draws the first samples
        in 3D to ``folder/samples.png``.

    Raises:
        DataError: the dataset has no coordinates (checked before sampling).
    """
    from .convert.rdkit3d import to_mols3d
    from .data import load_dataset
    from .data.base import dataset_label
    from .metrics.evaluate3d import evaluate_molecules_3d, is_3d_dataset, reference_splits

    options = dict(options)
    if str(dataset).lower().endswith((".sdf", ".sdf.gz")):
        options.setdefault("with_pos", True)  # an .sdf is scored against its conformers, as `graphdiff evaluate` does
    ds = load_dataset(dataset, root=root, **options)
    if not is_3d_dataset(ds):
        raise DataError(f"a 3D model is scored against a dataset with coordinates (qm9_3d, an .xyz or an .sdf with "
                        f"conformers); {dataset_label(ds)} has none")
    reference, novelty = reference_splits(ds, None)
    t = time.perf_counter()
    state = pipe.sample(samples, seed=0, output="state")
    mols = to_mols3d(state, state.schema if state.schema is not None else pipe.schema, sanitize=False)
    sample_s = time.perf_counter() - t
    res = evaluate_molecules_3d(mols, ds, reference=reference, novelty=novelty)
    n, s3 = len(mols), res["settings_3d"]
    line = (f"{n:,} samples (seed 0) with the {pipe.config.sample.sampler or 'default'} sampler at "
            f"{pipe.config.sample.steps} steps in {sample_s:.1f} s ({n / sample_s:.2f} molecules/s; {threads_line}), "
            f"scored by the 3D evaluator (as `graphdiff evaluate --dataset {dataset} --samples FILE.sdf` scores an "
            f".sdf of them) against "
            f"{_split_words(reference, s3['reference_molecules'], len(ds.split(reference)))} (geometry, composition) "
            f"and {_split_words(novelty, s3['train_molecules_for_novelty'], len(ds.split(novelty)))} (novelty)")
    drawn = min(DRAWN, n)

    def write(folder: Path) -> None:  # as `graphdiff sample --out x.png` draws 3D samples
        from .viz3d import draw_molecules_3d

        draw_molecules_3d(mols[:drawn], folder / "samples.png")

    table = ["| metric | value |", "|---|---:|",
             *[f"| {label} | {card_value(res.get(key))} |" for key, label in CARD_3D if key in res], "",
             f"The first {drawn} samples (seed 0), drawn in 3D: `samples.png`."]
    return {"table": table, "write": write, "line": line,
            "data": f"`{dataset}` train split (coordinates, explicit hydrogens)",
            "metrics": {"samples": n, "steps": pipe.config.sample.steps, "sample_seconds": round(sample_s, 2),
                        **{k: v for k, v in res.items() if k != "per_type"}}}
