"""Molecule metrics (graphdiff.metrics.molecules / nspdk / filters / sascore): hand-made lists with known answers."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import FilterCatalog

from graphdiff.errors import DataError
from graphdiff.metrics import filters as F
from graphdiff.metrics import molecules as M
from graphdiff.metrics import nspdk as N
from graphdiff.metrics import reference_stats as R
from tests.assets_smiles import TRICKY, combinatorial
from tests.conftest import SHARED

SMALL = ["CCO", "CCN", "CC(=O)O", "c1ccccc1", "c1ccncc1", "CC(C)C", "C1CCCCC1", "OCC(O)CO", "CC#N", "C=CC=O",
         "CCOC(=O)C", "Nc1ccccc1", "CC(=O)N", "CCCCO", "c1ccoc1", "C1CC1", "COC", "CCS", "ClCCl", "FC(F)F"]
DRUGS = ["CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C",
         "CC(=O)NC1=CC=C(O)C=C1", "c1ccc2c(c1)ccc1ccccc12", "CN1CCC[C@H]1c1cccnc1", "O=C1NC(=O)C(=O)N1",
         "FC(F)(F)c1ccccc1", "COc1ccc2[nH]cc(CCN)c2c1", "CC(C)NCC(O)c1ccc(O)c(O)c1", "Clc1ccc(cc1)C(c1ccccc1)N1CCNCC1",
         "O=C(O)c1ccccc1O", "CCN(CC)CCOC(=O)c1ccc(N)cc1", "NC(=O)c1cccnc1", "Cc1ccc(cc1)S(=O)(=O)N",
         "CC1=C(C(=O)OC1)c1ccccc1", "c1ccc(cc1)-c1ccccc1", "OC(=O)CCc1ccccc1", "CC(C)(C)c1ccc(O)cc1",
         "COc1cc(C=O)ccc1O"]


def _no_nan(obj, path="result"):
    if isinstance(obj, float):
        assert not math.isnan(obj), path
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _no_nan(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _no_nan(v, f"{path}[{i}]")


# ---- validity ------------------------------------------------------------------------------------------------
GEN = ["CCO", "CCO", "c1ccccc1", None, "", "   ", "C(C)(C)(C)(C)C", "CC.O", "not a smiles", "c1cccc1",
       "CCCCCCO.[CH5]"]


def test_validity_fractions_on_smiles():
    # strict: CCO x2, benzene, CC.O (fragments allowed) -> 4/11; "", "   " and None are invalid samples
    assert M.fraction_valid_strict(GEN) == pytest.approx(4 / 11)
    # relaxed adds the sample whose largest fragment (hexanol) is fine despite the pentavalent [CH5]
    assert M.fraction_valid_relaxed(GEN) == pytest.approx(5 / 11)
    # corrected adds the pentavalent carbon (a bond removed); an isolated over-valent atom cannot be repaired
    assert M.fraction_valid_corrected(GEN) == pytest.approx(5 / 11)
    assert M.canonical_valid(GEN)[:3] == ["CCO", "CCO", "c1ccccc1"]
    assert M.canonical_valid(GEN, "relaxed")[7] == "CC" and M.canonical_valid(GEN, "relaxed")[10] == "CCCCCCO"
    assert M.canonical_valid(GEN, "corrected")[6] == "CC(C)(C)C"


def test_validity_on_mols_from_graphs():
    from graphdiff.convert.rdkit import from_smiles, to_mol

    mols = to_mol(from_smiles(["CCO", "c1ccccc1", "CC(=O)[O-]"]), sanitize=False)
    rw = Chem.RWMol()
    for _ in range(6):
        rw.AddAtom(Chem.Atom("C"))
    for i in range(1, 6):  # a carbon with five bonds
        rw.AddBond(0, i, Chem.BondType.SINGLE)
    bad = rw.GetMol()
    samples = [*mols, bad, None]
    assert M.fraction_valid_strict(samples) == pytest.approx(3 / 5)
    assert M.fraction_valid_relaxed(samples) == pytest.approx(3 / 5)
    assert M.fraction_valid_corrected(samples) == pytest.approx(4 / 5)
    assert M.canonical_valid(samples)[:3] == ["CCO", "c1ccccc1", "CC(=O)[O-]"]
    r = M.molecule_metrics(samples, SMALL, metrics=("validity",), n_jobs=1)
    assert r["n_valid"] == 3 and r["validity_corrected"] == pytest.approx(0.8)


def test_uniqueness_and_novelty_denominators():
    gen = ["CCO", "OCC", "C(O)C", "CCN", "CCN", "C", None, "xx"]
    r = M.molecule_metrics(gen, SMALL, ["OCC", "CCCC"], metrics=("novelty",), n_jobs=1)
    assert r["n_samples"] == 8 and r["n_valid"] == 6
    assert r["n_unique"] == 3 and r["uniqueness"] == pytest.approx(3 / 6)  # over valid samples
    assert r["novelty"] == pytest.approx(2 / 3)  # CCO is in train (written OCC there); CCN and C are novel
    assert r["valid_unique_novel"] == pytest.approx(2 / 8)  # over all samples
    assert M.fraction_unique(["CCO", "CCO", None]) == 0.5
    assert M.novelty(["CCO", "CCN"], {"CCO"}) == 0.5
    assert r["settings"]["uniqueness_denominator"] == "valid samples"


def test_validity_definition_selects_downstream_molecules():
    gen = ["C(C)(C)(C)(C)C", "CCO", "CC.O"]
    strict = M.molecule_metrics(gen, SMALL, metrics=("validity",), n_jobs=1)
    fixed = M.molecule_metrics(gen, SMALL, metrics=("validity",), validity="corrected", n_jobs=1)
    assert strict["n_valid"] == 2 and fixed["n_valid"] == 3
    assert fixed["validity"] == 1.0 and fixed["settings"]["validity_definition"] == "corrected"
    # "CC.O" sanitizes (strictly valid) but is two molecules: valid_connected counts whole molecules only
    assert strict["valid_connected"] == pytest.approx(1 / 3) and strict["validity_strict"] == pytest.approx(2 / 3)
    assert fixed["valid_connected"] is None and "valid_connected" in fixed["undefined"]
    with pytest.raises(DataError):
        M.molecule_metrics(gen, SMALL, validity="loose")


# ---- FCD -----------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fcd.get_predictions uses np.row_stack
def test_fcd_identity_difference_and_package_agreement():
    import fcd as fcd_pkg

    assert abs(M.fcd(SMALL, SMALL)) < 1e-6
    near = M.fcd(SMALL[:10], SMALL[10:])
    far = M.fcd(SMALL, DRUGS)
    assert far > near > 0
    # the activations are the fcd package's own (get_predictions); the Frechet formula is checked below
    can = [Chem.MolToSmiles(Chem.MolFromSmiles(s), isomericSmiles=False) for s in DRUGS]
    theirs = fcd_pkg.get_predictions(fcd_pkg.load_ref_model(), can, n_jobs=0, device="cpu")
    assert np.allclose(M.chemnet_activations(can, device="cpu"), theirs, atol=1e-5)
    # invalid samples are left out; fewer than two valid molecules is an error
    assert M.fcd([*SMALL, None, "xx"], SMALL) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError):
        M.fcd(["CCO", None], SMALL)


def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(60, 8)) * 2 + 1
    sa, sb = np.cov(a.T), np.cov(b.T)
    from scipy.linalg import sqrtm

    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa + sb - 2 * sqrtm(sa @ sb).real)
    assert M.frechet_distance((a.mean(0), sa), (b.mean(0), sb)) == pytest.approx(ref, rel=1e-9)


# ---- fingerprint similarities --------------------------------------------------------------------------------
def test_snn_and_intdiv_by_hand():
    g = np.array([[1, 1, 0, 0]], np.float32)
    r = np.array([[1, 0, 0, 0], [0, 1, 1, 0]], np.float32)
    assert M.snn(g, r) == pytest.approx(0.5)  # T = 1/2 and 1/3
    x = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], np.float32)  # disjoint: T = [[1, 0], [0, 1]]
    d1, d2 = M.internal_diversity(x)
    assert d1 == pytest.approx(0.5) and d2 == pytest.approx(1 - math.sqrt(0.5))
    # multiplicities are the same as repeated rows
    y = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], np.float32)
    rep = M.internal_diversity(np.repeat(y, [3, 1], axis=0))
    assert M.internal_diversity(y, np.array([3, 1])) == pytest.approx(rep)
    # all-zero fingerprints count as identical (0/0 -> 1, as MOSES)
    assert M.snn(np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)) == 1.0


def test_snn_intdiv_on_molecules():
    # methane and water share no Morgan bit: SNN(CH4 | {CH4, H2O}) = 1, IntDiv over {CH4, H2O} = 1/2
    bits = [np.unpackbits(M._fingerprint(Chem.MolFromSmiles(s))) for s in ("C", "O")]
    assert not (bits[0] & bits[1]).any()
    r = M.molecule_metrics(["C", "O"], ["C", "O"], metrics=("snn", "intdiv"), n_jobs=1)
    assert r["snn"] == 1.0
    assert r["intdiv1"] == pytest.approx(0.5) and r["intdiv2"] == pytest.approx(1 - math.sqrt(0.5))
    r = M.molecule_metrics(DRUGS, SMALL, metrics=("snn", "intdiv"), n_jobs=1)
    assert 0 < r["snn"] < 1 and 0 < r["intdiv2"] < r["intdiv1"] < 1


def test_frag_scaf_cosine():
    assert M.cosine_similarity_counts({"a": 1, "b": 1}, {"a": 2}) == pytest.approx(1 / math.sqrt(2))
    assert M.cosine_similarity_counts({}, {"a": 1}) is None
    r = M.molecule_metrics(DRUGS, DRUGS, metrics=("frag", "scaf"), n_jobs=1)
    assert r["frag"] == pytest.approx(1.0) and r["scaf"] == pytest.approx(1.0)
    r = M.molecule_metrics(["CCO", "CCN"], DRUGS, metrics=("frag", "scaf"), n_jobs=1)
    assert r["scaf"] is None and "scaffold" in r["undefined"]["scaf"]  # acyclic: no scaffold with >= 2 rings


# ---- filters -------------------------------------------------------------------------------------------------
def test_filters_pains_and_rules():
    rhodanine = Chem.MolFromSmiles("O=C1NC(=S)SC1=Cc1ccccc1")  # 5-benzylidene rhodanine, PAINS ene_rhod_A
    params = FilterCatalog.FilterCatalogParams()
    params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    assert FilterCatalog.FilterCatalog(params).HasMatch(rhodanine)  # independent: RDKit's PAINS agrees
    assert not F.passes_filters(rhodanine)
    assert F.passes_filters(Chem.MolFromSmiles("CCO"))
    assert not F.passes_filters(Chem.MolFromSmiles("CC(=O)[O-]"))  # charged
    assert not F.passes_filters(Chem.MolFromSmiles("CCP"))  # P not allowed
    assert not F.passes_filters(Chem.MolFromSmiles("C1CCCCCCC1"))  # ring of 8
    assert not F.passes_filters(None)
    assert "moses" in F.filter_set_name() or "rdkit" in F.filter_set_name()
    r = M.molecule_metrics(["CCO", "O=C1NC(=S)SC1=Cc1ccccc1", None], SMALL, metrics=("filters",), n_jobs=1)
    assert r["filters"] == pytest.approx(0.5)  # over valid molecules
    assert r["settings"]["filter_set"] == F.filter_set_name()


def test_filter_screen_is_exact():
    name, matcher = F._catalog()
    if not isinstance(matcher, F._SmartsSet):
        pytest.skip("molsets not installed: RDKit FilterCatalog fallback in use")
    mols = [Chem.AddHs(m) for m in (Chem.MolFromSmiles(s) for s in TRICKY + combinatorial(300) + DRUGS)
            if m is not None]
    assert [matcher(m, screen=True) for m in mols] == [matcher(m, screen=False) for m in mols]


# ---- properties ----------------------------------------------------------------------------------------------
def test_properties_and_kl():
    from graphdiff.metrics.sascore import sa_score

    assert 1.0 <= sa_score(Chem.MolFromSmiles("c1ccccc1")) < 2.0
    assert M.kl_histogram(np.array([0, 0, 1, 1.0]), np.array([0, 0, 0, 1.0]), bins=2) == pytest.approx(
        0.5 * math.log(0.5 / (4 / 6)) + 0.5 * math.log(0.5 / (2 / 6)))
    r = M.molecule_metrics(DRUGS, DRUGS, metrics=("props",), n_jobs=1)
    for p in M.PROPERTIES:
        assert r["props"][p]["wasserstein"] == pytest.approx(0.0, abs=1e-12)
        assert r["props"][p]["kl"] == pytest.approx(0.0, abs=1e-12)
    r = M.molecule_metrics(SMALL, DRUGS, metrics=("props",), n_jobs=1)
    assert r["props"]["mw"]["wasserstein"] > 50 and r["props"]["mw"]["kl"] > 0.1


# ---- NSPDK ---------------------------------------------------------------------------------------------------
def _graphs(smiles):
    return [N.mol_to_nx(Chem.MolFromSmiles(s)) for s in smiles]


def test_nspdk_identity_symmetry_and_order():
    x, y = _graphs(SMALL), _graphs(DRUGS)
    assert N.nspdk_mmd(x, x) == 0.0
    assert N.nspdk_mmd(x, y) > 0 and N.nspdk_mmd(x, y) == pytest.approx(N.nspdk_mmd(y, x), rel=1e-12)
    alkanes = _graphs(["CC", "CCC", "CCCC", "CC(C)C", "CCCCC"])
    near = _graphs(["CC", "CCC", "CCCC", "CC(C)C", "CCCCO"])
    assert 0 < N.nspdk_mmd(alkanes, near) < N.nspdk_mmd(alkanes, _graphs(["c1ccccc1", "c1ccncc1", "O=C=O"]))
    f = N.nspdk_features(*N.mol_to_arrays(Chem.MolFromSmiles("CCO")))
    assert sum(v * v for v in f.values()) == pytest.approx(1.0)  # unit norm
    # node order does not change the vector's content; molecules and their graphs give the same features
    assert f == N.nspdk_features(*N.nx_to_arrays(N.mol_to_nx(Chem.MolFromSmiles("CCO"))))
    with pytest.raises(DataError):
        N.nspdk_mmd([nx.Graph()], x)
    r = M.molecule_metrics(SMALL, SMALL, metrics=("nspdk",), n_jobs=1)
    assert r["nspdk"] == 0.0


def test_nspdk_matches_eden_vectorizer():
    eden_graph = pytest.importorskip("eden.graph")
    graphs = _graphs(SMALL + DRUGS + TRICKY[:30])

    def relabel(g):  # integer labels: EDeN's hash of them is run-independent, so vectors must be bit-identical
        h = nx.Graph()
        for u, d in g.nodes(data=True):
            h.add_node(u, label=N.label_code(d["label"]))
        for u, v, d in g.edges(data=True):
            h.add_edge(u, v, label=N.label_code(d["label"]))
        return h

    x = eden_graph.vectorize([relabel(g) for g in graphs], complexity=4, discrete=True)
    for i, g in enumerate(graphs):
        row = x.getrow(i)
        assert dict(zip(row.indices.tolist(), row.data.tolist())) == N.nspdk_features(*N.nx_to_arrays(g))
    a, b = graphs[:20], graphs[20:]
    xa = eden_graph.vectorize([relabel(g) for g in a], complexity=4, discrete=True)
    xb = eden_graph.vectorize([relabel(g) for g in b], complexity=4, discrete=True)
    gdss = (xa @ xa.T).mean() + (xb @ xb.T).mean() - 2 * (xa @ xb.T).mean()  # GDSS compute_nspdk_mmd
    assert N.nspdk_mmd(a, b) == pytest.approx(gdss, rel=1e-9, abs=1e-15)


def test_nspdk_graphs_match_gdss_reference_pickle():
    path = SHARED / "qm9" / "qm9_test_nx.pkl"
    csv = SHARED / "qm9" / "qm9_smiles.csv.gz"
    if not (path.is_file() and csv.is_file()):
        pytest.skip("shared QM9 files absent")
    import gzip
    import json

    from graphdiff.data.safe_pickle import safe_load

    graphs = safe_load(path)[:200]
    idx = json.loads((SHARED / "qm9" / "valid_idx_qm9.json").read_text())["valid_idxs"][:200]
    with gzip.open(csv, "rt") as fh:
        rows = fh.read().split("\n")[1:]
    for g, i in zip(graphs, idx):
        mol = Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(rows[int(i)])))
        mine, gdss = N.nspdk_features(*N.mol_to_arrays(mol)), N.nspdk_features(*N.nx_to_arrays(g))
        assert mine.keys() == gdss.keys()  # atom order may differ between RDKit versions: values up to rounding
        assert np.allclose([mine[k] for k in mine], [gdss[k] for k in mine], rtol=1e-12, atol=0)


# ---- whole pipeline ------------------------------------------------------------------------------------------
def test_all_invalid_gives_defined_results():
    r = M.molecule_metrics([None, "", "xx", "c1cccc1"], SMALL, ["CCO"], n_jobs=1)
    assert r["validity"] == 0.0 and r["n_valid"] == 0 and r["valid_unique_novel"] == 0.0
    for k in ("uniqueness", "novelty", "fcd", "nspdk", "snn", "frag", "scaf", "intdiv1", "filters", "props"):
        assert r[k] is None, k
    assert r["undefined"]["fcd"] == "no valid molecule"
    _no_nan(r)
    r = M.molecule_metrics(["CCO", "CCN", None], ["CCO", "xx"], n_jobs=1)  # a single valid reference molecule
    assert r["fcd"] is None and "reference" in r["undefined"]["fcd"]
    assert r["settings"]["n_reference_invalid"] == 1
    _no_nan(r)


def test_empty_and_bad_input_raise_one_line_errors():
    for call in (lambda: M.molecule_metrics([], SMALL), lambda: M.molecule_metrics(["CCO"], []),
                 lambda: M.fraction_valid_strict([]), lambda: M.fcd([], SMALL),
                 lambda: M.molecule_metrics([1.5], SMALL), lambda: M.molecule_metrics("CCO", SMALL),
                 lambda: M.molecule_metrics(["CCO"], ["xx", None]),
                 lambda: M.molecule_metrics(["CCO"], SMALL, metrics=("fcd", "bogus"))):
        with pytest.raises(DataError) as info:
            call()
        assert "\n" not in str(info.value)


def test_full_run_parallel_equals_serial_and_cache(monkeypatch):
    from graphdiff.metrics import _parallel

    monkeypatch.setattr(_parallel, "_PARALLEL_MIN", 8)
    gen = [*DRUGS, *SMALL[:5], None, "CCO", "xx"]
    M.clear_caches()
    serial = M.molecule_metrics(gen, SMALL + DRUGS[:5], SMALL, n_jobs=1)
    parallel = M.molecule_metrics(gen, SMALL + DRUGS[:5], SMALL, n_jobs=2)
    for k in ("validity", "uniqueness", "novelty", "snn", "intdiv1", "intdiv2", "frag", "scaf", "filters", "nspdk"):
        assert parallel[k] == pytest.approx(serial[k], rel=1e-9, abs=1e-15), k
    assert parallel["fcd"] == pytest.approx(serial["fcd"], rel=1e-6)
    stats = M.reference_statistics(SMALL + DRUGS[:5], n_jobs=1)
    again = M.molecule_metrics(gen, stats, SMALL, n_jobs=1)
    assert again["fcd"] == pytest.approx(serial["fcd"], rel=1e-9) and again["nspdk"] == serial["nspdk"]
    _no_nan(serial)
    assert serial["settings"]["n_reference"] == 25 and serial["n_samples"] == len(gen)


def test_blocked_reference_features_equal_single_block(monkeypatch):
    gen = [*DRUGS, *SMALL[:5]]
    ref = SMALL + DRUGS[:5]
    M.clear_caches()
    whole = M.molecule_metrics(gen, ref, SMALL, n_jobs=1)
    monkeypatch.setattr(R, "_REF_BLOCK", 4)  # 25 reference molecules in 7 blocks
    M.clear_caches()
    blocked = M.molecule_metrics(gen, ref, SMALL, n_jobs=1)
    for k in ("nspdk", "snn", "frag", "scaf", "fcd"):
        assert blocked[k] == pytest.approx(whole[k], rel=1e-9, abs=1e-15), k
    for p in M.PROPERTIES:
        assert blocked["props"][p]["wasserstein"] == pytest.approx(whole["props"][p]["wasserstein"], rel=1e-12)
