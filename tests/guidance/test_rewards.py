"""Rewards (graphdiff.guidance.rewards): values against RDKit / networkx, invalid samples, user rewards, errors."""

from __future__ import annotations

import math
import textwrap

import networkx as nx
import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors

from graphdiff.errors import ConfigError, GraphdiffError
from graphdiff.guidance import REWARDS, Reward, RewardError, get_reward, parse_reward_args
from graphdiff.metrics.sascore import sa_score

SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "C1CC1C1CCCCC1"]
MOLS = [Chem.MolFromSmiles(s) for s in SMILES]


def _pentavalent_carbon() -> Chem.Mol:
    return Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)


INVALID = [None, _pentavalent_carbon(), Chem.Mol(), "not a smiles", ""]


@pytest.mark.parametrize("name, reference", [
    ("qed", QED.qed),
    ("sa", sa_score),
    ("sa_norm", lambda m: (10.0 - sa_score(m)) / 9.0),
    ("logp", Crippen.MolLogP),
    ("mw", Descriptors.MolWt),
    ("rings", rdMolDescriptors.CalcNumRings),
])
def test_molecule_rewards_equal_rdkit(name, reference):
    reward = get_reward(name)
    got = reward(MOLS)
    assert got.dtype == np.float64 and got.shape == (len(MOLS),)
    np.testing.assert_allclose(got, [reference(m) for m in MOLS], rtol=1e-12)
    np.testing.assert_allclose(reward(SMILES), got, rtol=1e-12)  # SMILES strings score the same
    assert reward.kind == "molecule"


def test_known_values_and_directions():
    assert get_reward("rings")(["C1CC1C1CCCCC1", "CCO"]).tolist() == [2.0, 0.0]
    assert get_reward("sa").higher_is_better is False and get_reward("qed").higher_is_better is True
    sa = get_reward("sa")(["c1ccccc1"])[0]
    assert get_reward("sa_norm").score("c1ccccc1") == pytest.approx((10 - sa) / 9)


@pytest.mark.parametrize("name, expected", [("qed", 0.0), ("sa", 10.0), ("sa_norm", 0.0), ("logp", -math.inf),
                                            ("mw", 0.0), ("rings", 0.0)])
def test_invalid_molecules_get_the_default_invalid_value(name, expected):
    reward = get_reward(name)
    assert reward.invalid_value == expected
    got = reward(INVALID + ["c1ccccc1C(=O)O"])  # a valid control scores differently
    assert got[:-1].tolist() == [expected] * len(INVALID)
    assert got[-1] != expected


def test_invalid_value_is_user_settable_and_checked():
    reward = get_reward("qed", invalid_value=-1)
    assert reward([None, "CCO"])[0] == -1.0 and reward.invalid_value == -1.0
    with pytest.raises(ConfigError, match="invalid_value must be a number"):
        get_reward("qed", invalid_value="low")


def test_reward_sanitizes_a_copy_not_the_input_molecule():
    mol = Chem.MolFromSmiles("CCO", sanitize=False)
    assert get_reward("qed")([mol])[0] == pytest.approx(QED.qed(Chem.MolFromSmiles("CCO")))
    assert mol.NeedsUpdatePropertyCache()  # sanitizing would have cleared this flag


def test_similarity_is_tanimoto_on_morgan_radius2_2048():
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    target = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    expected = [DataStructs.TanimotoSimilarity(gen.GetFingerprint(target), gen.GetFingerprint(m)) for m in MOLS]
    got = get_reward("similarity", target="CC(=O)Oc1ccccc1C(=O)O")(MOLS + [None])
    np.testing.assert_allclose(got[:-1], expected, rtol=1e-12)
    assert got[2] == 1.0 and got[-1] == 0.0 and 0 < got[1] < 1


def test_smarts_counts_matches():
    reward = get_reward("smarts", pattern="[OX2H]")  # hydroxyl groups
    assert reward(["CCO", "OCC(O)CO", "c1ccccc1", None]).tolist() == [1.0, 3.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "needs target=SMILES"),
    ({"target": "C1CC"}, "not a valid SMILES"),
    ({"targt": "CCO"}, "did you mean 'target'"),
])
def test_similarity_argument_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        get_reward("similarity", **kwargs)
    assert "\n" not in str(info.value) and "similarity" in str(info.value)


def test_smarts_argument_errors():
    with pytest.raises(ConfigError, match="valid SMARTS"):
        get_reward("smarts", pattern="[C")
    with pytest.raises(ConfigError, match="needs pattern"):
        get_reward("smarts")


def test_graph_rewards_on_small_graphs():
    graphs = [nx.complete_graph(4), nx.path_graph(4), nx.star_graph(3), nx.Graph(), None]
    assert get_reward("n_nodes")(graphs).tolist() == [4.0, 4.0, 4.0, 0.0, 0.0]
    np.testing.assert_allclose(get_reward("density")(graphs), [1.0, 0.5, 0.5, 0.0, 0.0])
    triangle_with_tail = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)])  # clustering 1, 1, 1/3, 0
    np.testing.assert_allclose(get_reward("clustering")(graphs[:3] + [triangle_with_tail, nx.Graph(), None]),
                               [1.0, 0.0, 0.0, (1 + 1 + 1 / 3) / 4, 0.0, 0.0])
    assert all(get_reward(n).kind == "graph" for n in ("n_nodes", "density", "clustering"))
    assert get_reward("degree_hist", target=[1]).kind == "graph"


def test_degree_hist_is_minus_total_variation():
    reward = get_reward("degree_hist", target=[0, 2, 2])  # half degree 1, half degree 2: a path on 4 nodes
    got = reward([nx.path_graph(4), nx.complete_graph(4), nx.star_graph(3), nx.Graph(), None])
    # path: exact; K4: all degree 3 -> TV 1; star: degrees {1: 3/4, 3: 1/4} -> (|.75-.5| + .5 + .25) / 2 = 0.5
    np.testing.assert_allclose(got, [0.0, -1.0, -0.5, -1.0, -1.0])
    assert reward.invalid_value == -1.0
    np.testing.assert_allclose(get_reward("degree_hist", target=[0, 0.5, 0.5])([nx.star_graph(3)]), [-0.5])
    for bad in (None, [], [0, 0], [1, -1], "abc"):
        with pytest.raises(ConfigError, match="degree_hist"):
            get_reward("degree_hist", target=bad)


def test_samples_of_the_wrong_type_are_one_line_errors():
    with pytest.raises(RewardError, match="expected a networkx graph"):
        get_reward("density")(["CCO"])
    with pytest.raises(RewardError, match="expected an RDKit molecule"):
        get_reward("qed")([nx.path_graph(3)])
    with pytest.raises(RewardError, match="list of samples"):
        get_reward("qed")("CCO")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'qed'") as info:
        get_reward("qde")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="did you mean 'invalid_value'"):
        get_reward("qed", invalid_valu=0)
    assert set(REWARDS) >= {"qed", "sa", "sa_norm", "logp", "mw", "rings", "similarity", "smarts", "n_nodes",
                            "density", "clustering", "degree_hist"}


def test_callable_reward_per_sample_and_batched():
    calls = []

    def heavy_atoms(mol):
        calls.append(Chem.MolToSmiles(mol))
        return mol.GetNumHeavyAtoms()

    reward = get_reward(heavy_atoms, invalid_value=-5)
    assert reward.name == "heavy_atoms" and reward.kind == "molecule"
    assert reward(["CCO", None, _pentavalent_carbon(), "c1ccccc1"]).tolist() == [3.0, -5.0, -5.0, 6.0]
    assert calls == ["CCO", "c1ccccc1"]  # invalid molecules never reach the user function
    assert reward.n_scored == 4

    def sizes(graphs):
        return np.array([g.number_of_nodes() for g in graphs])

    batched = get_reward(sizes, kind="graph", batched=True, name="size")
    assert batched([nx.path_graph(3), None, nx.path_graph(5)]).tolist() == [3.0, -math.inf, 5.0]
    assert get_reward(sizes, kind="graph", batched=True, higher_is_better=False).invalid_value == math.inf


@pytest.mark.parametrize("fn, batched, match", [
    (lambda m: "high", False, r"'bad': returned 'high' \(not a number\) for sample 1 \(molecule 'CCO'\)"),
    (lambda m: float("nan"), False, r"'bad': returned NaN for sample 1"),
    (lambda m: [1.0, 2.0], False, r"returned \[1.0, 2.0\] \(not a number\) for sample 1"),
    (lambda m: 1 / 0, False, r"'bad': raised ZeroDivisionError: division by zero on sample 1 \(molecule 'CCO'\)"),
    (lambda ms: [1.0], True, r"'bad': returned 1 values for a batch of 2 samples"),
    (lambda ms: [1.0, None], True, r"returned None \(not a number\) for sample 2 \(molecule 'c1ccccc1'\)"),
    (lambda ms: [1.0, float("nan")], True, r"returned NaN for sample 2"),
    (lambda m: float("inf"), False, r"'bad': returned inf for sample 1"),
    (lambda ms: 1 / 0, True, r"raised ZeroDivisionError: division by zero on a batch of 2 samples"),
])
def test_bad_user_rewards_are_one_line_errors(fn, batched, match):
    reward = get_reward(fn, batched=batched, name="bad")
    with pytest.raises(RewardError, match=match) as info:
        reward([None, "CCO", "c1ccccc1"])
    assert isinstance(info.value, GraphdiffError) and "\n" not in str(info.value)


def test_user_reward_exception_message_is_flattened_to_one_line():
    def noisy(mol):
        raise ValueError("first line\nsecond line")

    with pytest.raises(RewardError) as info:
        get_reward(noisy)(["CCO"])
    assert "\n" not in str(info.value) and "first line second line" in str(info.value)


def test_module_function_rewards(tmp_path, monkeypatch):
    (tmp_path / "gd_test_user_rewards.py").write_text(textwrap.dedent("""
        def n_atoms(mol):
            return mol.GetNumAtoms()

        def n_edges(graphs):
            return [g.number_of_edges() for g in graphs]

        NOT_CALLABLE = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    reward = get_reward("gd_test_user_rewards:n_atoms")
    assert reward.name == "gd_test_user_rewards:n_atoms"
    assert reward(["CCO", None, "c1ccccc1"]).tolist() == [3.0, -math.inf, 6.0]
    edges = get_reward("gd_test_user_rewards:n_edges", kind="graph", batched=True, invalid_value=0)
    assert edges([nx.cycle_graph(5), None]).tolist() == [5.0, 0.0]
    with pytest.raises(ConfigError, match="did you mean 'n_atoms'"):
        get_reward("gd_test_user_rewards:n_atom")
    with pytest.raises(ConfigError, match="not callable"):
        get_reward("gd_test_user_rewards:NOT_CALLABLE")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_xyz'") as info:
        get_reward("no_such_module_xyz:f")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="kind must be one of"):
        get_reward("gd_test_user_rewards:n_atoms", kind="graf")
    with pytest.raises(ConfigError, match="did you mean 'batched'"):
        get_reward("gd_test_user_rewards:n_atoms", batchd=True)


def test_reward_object_and_parse_reward_args():
    reward = get_reward("qed")
    assert get_reward(reward) is reward
    args = parse_reward_args(["target=C=O", "invalid_value=-1", "pattern=[C,N]=O", "hist=[0, 2, 1]", "x=CCO"])
    assert args == {"target": "C=O", "invalid_value": -1, "pattern": "[C,N]=O", "hist": [0, 2, 1], "x": "CCO"}
    assert get_reward("similarity", **parse_reward_args(["target=CCO"])).score("CCO") == 1.0
    assert parse_reward_args(["connected=true", "b=FALSE", "c=True"]) == {"connected": True, "b": False, "c": True}
    assert get_reward("qed", **parse_reward_args(["connected=true"])).score("C.C") == 0.0  # two fragments: invalid
    for bad in (["target"], ["=CCO"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="reward argument"):
            parse_reward_args(bad)


def test_reward_class_direct_use():
    reward = Reward("neg_atoms", lambda m: -m.GetNumAtoms(), bounds=(-100, 0))
    assert reward.invalid_value == -100.0 and reward(["CC"]).tolist() == [-2.0]
    assert reward([]).shape == (0,) and reward([]).dtype == np.float64
    assert reward(np.array([Chem.MolFromSmiles("CC"), None], dtype=object)).tolist() == [-2.0, -100.0]
    assert reward(s for s in ("C", "CCC")).tolist() == [-1.0, -3.0]


def test_lenient_reward_gives_invalid_value_to_unscorable_samples():
    def picky(mol):
        if mol.GetNumAtoms() > 2:
            raise RuntimeError("too big")
        return float("nan") if mol.GetNumAtoms() == 2 else 1.0

    lenient = Reward("picky", picky, bounds=(0, 1), unscorable_is_invalid=True)
    assert lenient(["C", "CC", "CCC"]).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(RewardError, match="'picky': returned NaN for sample 1"):
        Reward("picky", picky)(["C", "CC", "CCC"])


def test_connected_option_scores_fragmented_samples_as_invalid():
    import networkx as nx

    from graphdiff.errors import ConfigError
    from graphdiff.guidance import get_reward

    plain, conn = get_reward("qed"), get_reward("qed", connected=True)
    v_plain, v_conn = plain(["CCO", "CCO.N"]), conn(["CCO", "CCO.N"])
    assert v_plain[1] > 0 and v_conn[1] == conn.invalid_value == 0.0 and v_conn[0] == v_plain[0]
    assert conn.name == "qed+connected" and not plain.connected
    dens = get_reward("density", connected=True)
    assert list(dens([nx.path_graph(3), nx.empty_graph(3)])) == [2 / 3, 0.0]
    with pytest.raises(ConfigError, match="connected must be true or false"):
        get_reward("qed", connected="yes")


def test_a_user_reward_in_the_current_folder_imports_as_with_python_m(tmp_path, monkeypatch):
    import sys

    from graphdiff.guidance import get_reward

    (tmp_path / "scores_here_xyz.py").write_text("def atoms(mol):\n    return float(mol.GetNumAtoms())\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    reward = get_reward("scores_here_xyz:atoms")
    from rdkit import Chem

    assert reward.fn(Chem.MolFromSmiles("CCO")) == 3.0
