"""The on-disk cache of reference statistics and canonical training sets, the subset memo and the fast SNN."""

from __future__ import annotations

import numpy as np
import pytest

from graphdiff.metrics import molecules as M
from graphdiff.metrics import reference_stats as R
from graphdiff.metrics import similarity as S
from tests.metrics.test_molecules_metrics import DRUGS, SMALL

GEN = [*DRUGS[:12], *SMALL[:6], "CCO", None, "not a smiles"]
REF = [*SMALL, *DRUGS[8:], "C1=CC=CC=C1"]  # a Kekule benzene: the reference is canonicalised
TRAIN = ["OCC", "C1=CC=CC=C1N", *DRUGS[:3]]  # "OCC" / kekule aniline: non-canonical spellings of samples


def figures(res: dict) -> dict:
    """Everything but timings and the provenance of the reference statistics."""
    out = {k: v for k, v in res.items() if k != "timings_s"}
    out["settings"] = {k: v for k, v in res["settings"].items() if k != "reference_statistics"}
    return out


def _forbid(monkeypatch, *names):
    def refuse(*a, **k):
        raise AssertionError("recomputed although cached")

    for name in names:
        monkeypatch.setattr(R, name, refuse)


def test_second_run_reads_the_disk_cache_and_gives_identical_results(tmp_path, monkeypatch):
    M.clear_caches()
    first = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path)
    assert first["novelty"] < 1.0  # the training set was canonicalised ("OCC" is the sample "CCO")
    assert set(first["settings"]["reference_statistics"].values()) == {"computed"}
    assert len(list(tmp_path.glob("reference-*/*.npz"))) == 7 and len(list(tmp_path.glob("train-*.txt"))) == 1
    M.clear_caches()  # a new process: only the disk cache is left
    _forbid(monkeypatch, "_compute_features", "chemnet_stats", "_canon_chunk")
    second = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path)
    assert figures(second) == figures(first)
    sources = second["settings"]["reference_statistics"]
    assert set(sources) == {"base", "fp", "frag", "scaf", "props", "nspdk", "chemnet"}
    assert all(v.startswith("disk cache") for k, v in sources.items() if k != "base")
    assert "reference_features" not in second["timings_s"] and "fcd_reference_chemnet" not in second["timings_s"]


def test_a_changed_protocol_setting_invalidates_the_cache(tmp_path, monkeypatch):
    M.clear_caches()
    base = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("scaf", "novelty"))
    M.clear_caches()
    other = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("scaf", "novelty"),
                               scaffold_min_rings=1)
    assert other["settings"]["reference_statistics"]["scaf"] == "computed"
    assert other["scaf"] != base["scaf"]  # one-ring scaffolds now count
    assert len(list(tmp_path.glob("reference-*"))) == 2
    # a new RDKit (or fcd, fingerprint, NSPDK ...) version: nothing cached before may be reused
    real = R.protocol_settings
    monkeypatch.setattr(R, "protocol_settings", lambda *a: {**real(*a), "rdkit": "9999.1.1"})
    M.clear_caches()
    again = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("scaf", "novelty"))
    assert again["settings"]["reference_statistics"] == {"base": "computed", "scaf": "computed"}
    assert len(list(tmp_path.glob("reference-*"))) == 3 and len(list(tmp_path.glob("train-*.txt"))) == 2
    assert figures(again) == figures(base)


def test_an_unreadable_cache_file_is_recomputed(tmp_path):
    M.clear_caches()
    first = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("snn", "props"))
    (fp,) = tmp_path.glob("reference-*/fp.npz")
    fp.write_bytes(b"truncated")
    M.clear_caches()
    second = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("snn", "props"))
    assert second["settings"]["reference_statistics"]["fp"] == "computed"
    assert second["settings"]["reference_statistics"]["props"].startswith("disk cache")
    assert figures(second) == figures(first)


def test_subset_memo_does_not_change_figures():
    M.clear_caches()
    memo: dict = {}
    M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, _memo=memo)
    assert {k[0] for k in memo} == {"flags", "feats", "chemnet", "snn"}
    for part in (GEN[::2], GEN[1::2], GEN[3:]):
        assert figures(M.molecule_metrics(part, REF, TRAIN, n_jobs=1, _memo=memo)) == \
            figures(M.molecule_metrics(part, REF, TRAIN, n_jobs=1))


def test_known_features_fill_in_exactly(tmp_path):
    """Values a provider supplies (fingerprints; QED, logP, MW) replace computing them; SA is still computed."""
    M.clear_caches()
    plain = M.reference_statistics(REF, metrics=("snn", "props", "frag", "nspdk"), n_jobs=1)
    st = R.prepare_reference(REF, n_jobs=1)
    assert st is plain  # the in-process cache: build an independent one below
    M.clear_caches()

    def provider(stats):
        known = np.zeros(len(stats.smiles), dtype=bool)
        known[::2] = True
        props = np.full((len(known), 4), np.nan)
        fps = np.zeros((len(known), 128), np.uint8)
        for i in np.flatnonzero(known):
            k = plain.smiles.index(stats.smiles[i])
            fps[i] = plain.fps[k]
            props[i, [0, 2, 3]] = [plain.props[p][0][k] for p in ("qed", "logp", "mw")]
        return R.KnownFeatures(known, fps, props, "a test table")

    st = M.reference_statistics(REF, metrics=("snn", "props", "frag", "nspdk"), n_jobs=1, provider=provider,
                                cache_dir=tmp_path)
    assert st.sources["fp"] == st.sources["props"] == "computed, with values from a test table"
    assert st.sources["frag"] == "computed"
    assert all(np.array_equal(a, b) for a, b in zip(st.fps, plain.fps))
    for p in M.PROPERTIES:
        assert np.array_equal(st.props[p][0], plain.props[p][0]) and np.array_equal(st.props[p][1], plain.props[p][1])
    assert st.frag == plain.frag and np.array_equal(st.nspdk_mean, plain.nspdk_mean)


def test_progress_lines_for_large_references(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(R, "PROGRESS_MIN", 5)
    M.clear_caches()
    M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=tmp_path, metrics=("fcd", "props", "novelty"))
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "computing reference statistics (props) of" in err and "reference ChemNet: " in err
    assert "canonicalising 5 training SMILES" in err and "reference features: " in err


@pytest.mark.parametrize("n_gen,n_ref", [(40, 300), (3, 1)])
def test_fast_max_tanimoto_equals_the_blocked_product(n_gen, n_ref):
    rng = np.random.default_rng(n_gen)
    ref = np.packbits(rng.random((n_ref, 1024)) < rng.uniform(0.005, 0.1, (n_ref, 1)), axis=1)
    gen = np.concatenate([np.packbits(rng.random((n_gen, 1024)) < 0.04, axis=1), ref[:2], np.zeros((1, 128),
                                                                                                    np.uint8)])
    if n_ref == 1:
        ref[0] = 0  # 0/0 counts as similarity 1, as MOSES
    old = [x for _, t in S._tanimoto_blocks(S._unpack(gen), S._unpack(ref)) for x in t.max(1).tolist()]
    assert S._max_tanimoto(gen, ref) == old
    assert S.nearest_similarity(list(gen), list(ref)).tolist() == old


def test_an_unwritable_cache_only_warns(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    M.clear_caches()
    res = M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, cache_dir=blocker / "cache", metrics=("frag", "novelty"))
    M.clear_caches()
    assert figures(res) == figures(M.molecule_metrics(GEN, REF, TRAIN, n_jobs=1, metrics=("frag", "novelty")))
    assert "warning: cannot write the metrics cache file" in capsys.readouterr().err
