"""Best-of-N search and the cost accounting guides report, on the bundled QM9 model (a few steps)."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from graphdiff.errors import ConfigError
from graphdiff.guidance.search import CallCounter, best_of_n, score_states
from graphdiff.pipeline import GraphDiffusionPipeline


def heavy_atoms(mols):
    """A reward: heavy-atom count, -1 for an invalid molecule."""
    out = []
    for m in mols:
        try:
            mm = Chem.Mol(m)
            Chem.SanitizeMol(mm)
            out.append(float(mm.GetNumHeavyAtoms()))
        except Exception:
            out.append(-1.0)
    return np.array(out)


@pytest.fixture(scope="module")
def pipe():
    return GraphDiffusionPipeline.from_pretrained("qm9-defog")


def test_best_of_n_keeps_the_best_of_its_own_unguided_candidates(pipe):
    n, N, steps = 6, 4, 3
    guided = best_of_n(pipe, n, heavy_atoms, N=N, steps=steps, seed=5)
    plain = pipe.sample(n * N, steps=steps, seed=5, output="state", progress=False)
    _, values = score_states(pipe, plain, heavy_atoms)
    per_sample = values.reshape(n, N)
    assert np.array_equal(guided.rewards, per_sample.max(1))  # the best of exactly those candidates
    assert len(guided.state) == n and len(guided.samples) == n
    assert np.array_equal(score_states(pipe, guided.state, heavy_atoms)[1], guided.rewards)
    # cost: N unguided runs of `steps` network calls, N reward calls, per returned sample
    assert guided.cost == {"network_calls_per_sample": N * steps, "reward_calls_per_sample": N, "candidates": N}


def test_pipeline_sample_with_a_guide_and_a_named_reward(pipe):
    from rdkit.Chem import QED

    smiles = pipe.sample(4, steps=2, seed=1, guide="best_of_n", reward="qed", guide_options={"N": 3},
                         output="smiles", progress=False)
    res = pipe.last_guidance
    assert len(smiles) == 4 and res.cost["reward_calls_per_sample"] == 3
    for s, r in zip(smiles, res.rewards):
        assert r == (pytest.approx(QED.qed(Chem.MolFromSmiles(s))) if s else 0.0)
    with pytest.raises(ConfigError, match="did you mean 'best_of_n'"):
        pipe.sample(2, steps=1, guide="best_of_m", reward="qed")
    with pytest.raises(ConfigError, match="needs a reward"):
        pipe.sample(2, steps=1, guide="best_of_n")


def test_a_lower_is_better_reward_is_minimised_and_reported_in_its_own_units(pipe):
    from graphdiff.guidance.rewards import Reward

    fewer = Reward("heavy atoms", lambda m: float(m.GetNumHeavyAtoms()), higher_is_better=False)
    n, N, steps = 6, 4, 3
    pipe.sample(n, steps=steps, seed=5, guide="best_of_n", reward=fewer, guide_options={"N": N}, progress=False)
    res = pipe.last_guidance
    assert fewer.n_scored == n * N and fewer.higher_is_better is False  # counted on the user's reward, unchanged
    plain = pipe.sample(n * N, steps=steps, seed=5, output="state", progress=False)
    _, values = score_states(pipe, plain, fewer)  # invalid candidates score +inf, the worst end
    assert np.array_equal(res.rewards, values.reshape(n, N).min(1))  # the smallest of each sample's candidates
    assert np.array_equal(score_states(pipe, res.state, fewer)[1], res.rewards)


def test_best_of_n_keeps_each_samples_size(pipe):
    g = best_of_n(pipe, 3, heavy_atoms, N=2, steps=2, seed=0, n_nodes=[4, 6, 8])
    assert g.state.n_nodes.tolist() == [4, 6, 8]


def test_call_counter_counts_graphs_per_forward_call(pipe):
    with CallCounter(pipe.denoiser) as c:
        pipe.sample(5, steps=2, seed=0, progress=False)
    assert c.graph_calls == 10
    pipe.sample(2, steps=1, seed=0, progress=False)  # the hook is gone after the context
    assert c.graph_calls == 10


def test_bad_rewards_and_settings_are_one_line_errors(pipe):
    with pytest.raises(ConfigError, match="N must be a positive integer"):
        best_of_n(pipe, 2, heavy_atoms, N=0, steps=1)
    with pytest.raises(ConfigError, match=r"returned shape \(1,\) for 4 samples"):
        best_of_n(pipe, 2, lambda mols: np.zeros(1), N=2, steps=1)
    with pytest.raises(ConfigError, match="returned nan for sample 0"):
        best_of_n(pipe, 1, lambda mols: np.full(len(mols), np.nan), N=2, steps=1)


def test_cli_sample_with_guide(tmp_path, capsys):
    from graphdiff.cli import main

    out = tmp_path / "g.smi"
    assert main(["sample", "--model", "qm9-defog", "-n", "3", "--steps", "2", "--guide", "best_of_n", "--reward",
                 "similarity", "--reward-arg", "target=CCO", "--candidates", "2", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "best_of_n on similarity" in text and "4 network calls, 2 reward calls" in text
    assert len(out.read_text().splitlines()) == 3
    assert main(["sample", "--model", "qm9-defog", "-n", "2", "--steps", "3", "--guide", "svdd", "--reward", "qed",
                 "--candidates", "2", "--out", str(out), "--quiet"]) == 0
    assert "svdd on qed" in capsys.readouterr().out and len(out.read_text().splitlines()) == 2
    assert main(["sample", "--model", "qm9-defog", "-n", "2", "--reward", "qed", "--out", str(out)]) == 2
    assert "--reward needs --guide" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--guide", "svdd", "--reward", "qed", "--paths", "3"],
     "--paths is read by --guide noise_search, not by --guide svdd"),
    (["--guide", "best_of_n", "--reward", "qed", "--alpha", "0.3"], "--alpha is read by --guide svdd"),
    (["--candidates", "3"], "not by unguided sampling"),
    (["--guide", "regressor", "--regressor", "r", "--target-value", "0.6", "--direction", "min"],
     "a target value sets the direction"),
])
def test_cli_guide_options_that_the_guide_does_not_read_are_refused(tmp_path, capsys, argv, needle):
    from graphdiff.cli import main

    assert main(["sample", "--model", "qm9-defog", "-n", "2", "--steps", "2", *argv, "--out",
                 str(tmp_path / "x.smi"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err
    assert not (tmp_path / "x.smi").exists()


def test_misspelt_guide_options_name_the_guide(pipe):
    with pytest.raises(ConfigError, match="best_of_n takes N, steps, seed and batch_size .* unknown key 'M'"):
        pipe.sample(2, steps=2, guide="best_of_n", reward="qed", guide_options={"M": 3}, progress=False)
    with pytest.raises(ConfigError, match="svdd: unknown option 'm' .neither one of svdd's own options"):
        pipe.sample(2, steps=2, guide="svdd", reward="qed", guide_options={"m": 3}, progress=False)
