"""Minority guidance: the model's own minority score (typical graphs reconstruct better than atypical ones), the
low-density-decile share (about 10% on the training distribution, near 100% far from it), the guide's checks."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.convert import from_smiles
from graphdiff.errors import ConfigError
from graphdiff.guidance import Regressor, minority_scores
from graphdiff.guidance.minority import minority_guidance
from graphdiff.metrics.density import density_reference


@pytest.fixture(scope="module")
def qm9():
    return GraphDiffusionPipeline.from_pretrained("qm9-defog")


@pytest.fixture(scope="module")
def typical(qm9):
    """Molecules of the model's own distribution (decoded states and RDKit molecules)."""
    return qm9.sample(160, steps=20, seed=0, progress=False)


def test_atypical_molecules_score_higher(qm9, typical):
    typical = typical[torch.arange(40)]
    # same sizes, nothing like QM9: fluorine cages and N-N chains
    odd = from_smiles(["FC(F)(F)C(F)(F)F", "NNNNNNNNN", "FN(F)N(F)N(F)F", "O=O", "FOOF", "N#N",
                       "C#CC#CC#CC#C", "OOOOOOOO"], qm9.schema, max_nodes=qm9.schema.max_nodes)
    s_typ = minority_scores(qm9, typical, draws=2)
    s_odd = minority_scores(qm9, odd, draws=2)
    assert np.median(s_odd) > np.quantile(s_typ, 0.75)
    assert np.allclose(minority_scores(qm9, typical, draws=2), s_typ)  # seeded
    with pytest.raises(ConfigError, match="draws must be a positive integer"):
        minority_scores(qm9, typical, draws=0)


def test_low_density_share_on_graphs():
    rng = np.random.default_rng(0)
    train = [nx.erdos_renyi_graph(int(rng.integers(12, 20)), 0.3, seed=int(s)) for s in rng.integers(0, 10**6, 600)]
    ref = density_reference(train, kind="graph", reference_size=400, held_out=150)
    more = [nx.erdos_renyi_graph(int(rng.integers(12, 20)), 0.3, seed=int(s)) for s in rng.integers(0, 10**6, 200)]
    share = ref.low_density_share(more)
    assert 0.03 < share < 0.2  # the training distribution: about a decile
    far = [nx.complete_graph(40) for _ in range(10)] + [nx.path_graph(30) for _ in range(10)]
    assert ref.low_density_share(far) == 1.0
    with pytest.raises(ConfigError, match="kind must be"):
        density_reference(train, kind="image")


def test_low_density_share_on_molecules(qm9, typical):
    from rdkit import Chem

    mols = [m for m in qm9._convert(typical, "rdkit") if m is not None]
    ref = density_reference(mols[:120], kind="molecule", reference_size=120, held_out=30)
    assert ref.low_density_share(mols[120:]) < 0.35  # more of the same distribution
    odd = [Chem.MolFromSmiles(s) for s in ("ClC(Cl)(Cl)Cl", "BrC(Br)Br", "IC(I)I", "C[Si](C)(C)C")] + [None]
    assert ref.low_density_share(odd) == pytest.approx(4 / 5)  # the invalid one is not counted


def test_minority_guide_needs_a_minority_regressor(qm9):
    s = qm9.schema
    reg = Regressor(net=torch.nn.Identity(), target="qed", mean=0.0, std=1.0, process="defog",
                    node_categories=tuple(s.node_categories), edge_categories=tuple(s.edge_categories), sizes={})
    with pytest.raises(ConfigError, match="needs a regressor of the minority score"):
        minority_guidance(qm9, 2, regressor=reg)
    reg.target = "minority"
    with pytest.raises(ConfigError, match="always raises the minority score"):
        minority_guidance(qm9, 2, regressor=reg, direction="min")
