"""SVDD-PM and noise search on EQGAT-diff (3D coordinates + atom types, charges, bonds): candidates of one reverse
step, valued by the reward of the denoiser's clean prediction; a tiny model trained for a few steps on a QM9-3D
subset (skipped without the shared QM9-3D file)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.guidance import noise_search
from graphdiff.guidance.svdd import svdd
from tests.conftest import shared_root


def carbons(mols) -> list[float]:
    """Carbon atoms per molecule (defined for unsanitizable molecules too; a missing one scores 0)."""
    return [0.0 if m is None else float(sum(a.GetSymbol() == "C" for a in m.GetAtoms())) for m in mols]


@pytest.fixture(scope="module")
def pipe3d(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("svdd3d")
    root = shared_root(tmp, "qm9_3d")
    return GraphDiffusionPipeline.fit(
        "qm9_3d", preset="eqgat_diff-qm9_3d", out=tmp / "run", root=root, progress=False,
        overrides={"dataset_options": {"limit": 40}, "train": {"batch_size": 8, "max_steps": 3, "threads": 1,
                                                               "ckpt_every": 0},
                   "model": {"n_layers": 1, "hidden": 16, "vectors": 4, "edge_hidden": 8, "heads": 2}})


def test_a_single_candidate_is_the_samplers_own_step(pipe3d):
    """With one candidate per path and the sampler's noise streams, a proposal is exactly the ancestral sampler's
    next state; more candidates differ in coordinates and categories."""
    from graphdiff.guidance.steppers import make_stepper
    from graphdiff.samplers.eqgat_diff import ancestral_3d
    from graphdiff.samplers.noise import SampleNoise

    process, steps, b = pipe3d.process, 4, 3
    sizes = torch.tensor([5, 7, 9])
    noise = SampleNoise.for_run(0, 0, b)
    stepper = make_stepper(pipe3d, steps, process.timesteps(steps), {})
    state = stepper.prior(sizes, noise)
    got = stepper.propose(state, 0, torch.arange(b), noise)
    seen = []
    ref_noise = SampleNoise.for_run(0, 0, b)
    ancestral_3d(process, pipe3d.denoiser, process.prior(sizes, generator=ref_noise), steps=steps, noise=ref_noise,
                 callback=lambda k, t, st: seen.append(st) if k == 0 else None)
    torch.testing.assert_close(got.pos, seen[0].pos)
    assert torch.equal(got.x, seen[0].x) and torch.equal(got.e, seen[0].e)
    many = stepper.propose(state, 0, torch.arange(b).repeat_interleave(4), SampleNoise.for_run(1, 0, 4 * b))
    assert len(many) == 4 * b and not torch.allclose(many.pos[0], many.pos[1])
    clean = stepper.clean(many, 0)
    assert clean.pos is not None and clean.pos.shape == many.pos.shape


def test_svdd_and_noise_search_run_on_eqgat_diff_and_count_their_calls(pipe3d):
    n, M, steps = 4, 3, 4
    g = svdd(pipe3d, n, carbons, M=M, steps=steps, seed=0)
    assert len(g.state) == n and g.state.pos is not None and len(g.samples) == n
    # one transition call per step, M clean predictions per step but the last
    assert g.cost["network_calls_per_sample"] == steps + M * (steps - 1)
    assert np.allclose(carbons(g.samples), g.rewards)
    ns = noise_search(pipe3d, 2, carbons, K=2, M=2, steps=steps, seed=0)
    assert len(ns.state) == 2 and ns.cost["network_calls_per_sample"] == 2 * steps + 4 * (steps - 1)
