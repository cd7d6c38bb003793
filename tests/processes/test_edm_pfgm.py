"""EDM and PFGM++: the PFGM++ kernel tends to EDM's Gaussian as D grows, samplers reproduce a known Gaussian, and
PFGM++ runs on ordinary (X, A) graphs through the same code."""

import pytest
import torch
from scipy import stats

from graphdiff.adapters import ImageGrid
from graphdiff.errors import ConfigError
from graphdiff.processes import EDMProcess, PFGMPPProcess, build_process
from graphdiff.samplers import SampleNoise, sample
from graphdiff.schema import Schema
from tests.gaussian_oracle import factor_cov, gaussian_pipeline


def _radii(process, b=4000, sigma=2.0, seed=0):
    mask = torch.ones(b, 64, dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    z = {"x": torch.randn(b, 64, 1, generator=g)}
    delta = process.perturbation(z, torch.full((b,), sigma), mask, uniform=g)
    return (delta["x"].pow(2).sum((1, 2)) / sigma**2).numpy()  # R^2 / sigma^2


def test_pfgm_kernel_tends_to_edm_gaussian_as_D_grows():
    schema = ImageGrid(8, 8).schema(1)
    edm = _radii(EDMProcess(schema))
    huge = _radii(PFGMPPProcess(schema, D=1e8), seed=1)
    small = _radii(PFGMPPProcess(schema, D=128), seed=2)
    chi2 = stats.chi2(64)
    assert stats.kstest(edm, chi2.cdf).pvalue > 1e-3  # EDM's noise: |n|^2 / sigma^2 ~ chi^2_N
    assert stats.kstest(huge, chi2.cdf).pvalue > 1e-3  # D -> inf reproduces it
    assert stats.kstest(small, chi2.cdf).pvalue < 1e-6  # finite D: heavier-tailed radius
    # beta-prime moments: E[R^2] = sigma^2 N D / (D - 2)
    assert abs(small.mean() / (64 * 128 / 126) - 1) < 0.03
    assert small.var() > 1.3 * edm.var()


def test_pfgm_prior_radius_follows_r_max_and_is_per_sample_reproducible():
    p = PFGMPPProcess(ImageGrid(4, 4).schema(1), D=32, sigma_max=5.0)
    a = p.prior(torch.full((6,), 16), generator=SampleNoise.for_run(3, 0, 6))
    b = p.prior(torch.full((3,), 16), generator=SampleNoise.for_run(3, 3, 3))
    torch.testing.assert_close(a.x[3:], b.x)  # sample i depends on (seed, i) only
    big = p.prior(torch.full((2000,), 16), generator=SampleNoise.for_run(0, 0, 2000))
    r2 = big.x.pow(2).sum((1, 2)) / 5.0**2  # the prior is the kernel at r_max = sigma_max sqrt(D)
    assert abs(float(r2.mean()) / (16 * 32 / 30) - 1) < 0.06


@pytest.mark.parametrize("D", [None, 1e6])
def test_heun_with_the_ideal_denoiser_reproduces_the_gaussian(D):
    cov = factor_cov(8, common=0.6, own=0.3)
    mu = torch.linspace(-0.5, 0.5, 8)
    pipe = gaussian_pipeline(cov, mu, pfgm_D=D)
    x = pipe.sample(400, steps=24, progress=False, seed=1).x[..., 0].double()
    assert torch.allclose(x.mean(0), mu.double(), atol=0.1)
    emp = torch.cov(x.T)
    assert torch.allclose(emp, cov.double(), atol=0.12)


def test_pfgm_runs_on_ordinary_graphs_with_symmetric_noise():
    schema = Schema.plain_graph(6).with_max_nodes(6)
    schema = Schema(node_categories=("node",), edge_categories=("none", "edge"), max_nodes=6,
                    node_count_hist=(0, 0, 0, 0, 1, 1, 2))
    p = build_process({"name": "pfgm", "D": 64, "node_features": "degree", "max_feat_num": 4}, schema)
    assert not p.fixed and p.keys == ("x", "adj")
    state = p.prior(torch.tensor([4, 6]), generator=SampleNoise.for_run(0, 0, 2))
    a = state.e[..., 0]
    assert torch.equal(a, a.transpose(1, 2)) and float(a[0, 4:].abs().sum()) == 0  # padding stays empty
    assert p.n_coords(state.mask).tolist() == [4 * 4 + 6, 6 * 4 + 15]


def test_bad_D_is_a_config_error():
    with pytest.raises(ConfigError, match="D .* must be a number > 2"):
        PFGMPPProcess(ImageGrid(2, 2).schema(1), D=1)


def test_sampler_steps_are_checked():
    pipe = gaussian_pipeline(factor_cov(8))
    with pytest.raises(ConfigError, match="steps"):
        sample(pipe.process, pipe.denoiser, torch.full((2,), 8), steps=0, sampler="heun")


class _VEScoreOracle(torch.nn.Module):
    """The exact score of N(0, cov) perturbed by the VE SDE: ``-(cov + sigma(t)^2 I)^-1 x``."""

    def __init__(self, cov, sde):
        super().__init__()
        self.cov, self.sde = cov.double(), sde
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, state, t, cond=None):
        from graphdiff.state import GraphState

        s2 = self.sde.sigma(t.double()).reshape(-1, 1, 1) ** 2
        prec = torch.linalg.inv(self.cov + s2 * torch.eye(len(self.cov), dtype=torch.float64))
        score = -(prec @ state.x.double().flatten(1).unsqueeze(-1)).reshape(state.x.shape)
        return GraphState(x=score.float(), e=state.e, mask=state.mask, pos=state.pos)


def test_score_sde_on_a_fixed_graph_samples_the_gaussian_with_the_exact_score():
    cov = factor_cov(8, common=0.6, own=0.3)
    p = build_process({"name": "score_sde", "sde": {"type": "VE", "beta_min": 0.01, "beta_max": 10.0}},
                      ImageGrid(2, 4).schema(1))
    x = sample(p, _VEScoreOracle(cov, p.sde), torch.full((400,), 8), steps=60, sampler="ode", seed=2).x[..., 0]
    assert x.shape == (400, 8)
    assert torch.allclose(torch.cov(x.double().T), cov.double(), atol=0.12)


def test_score_sde_refuses_ordinary_graphs():
    with pytest.raises(ConfigError, match="fixed-graph dataset"):
        build_process({"name": "score_sde"}, Schema.plain_graph(4))


def test_pfgm_trains_and_samples_gdss_graphs_through_the_same_code():
    from graphdiff.nn import GDSSDenoiser
    from graphdiff.state import GraphState

    schema = Schema(node_categories=("node",), edge_categories=("none", "edge"), max_nodes=5,
                    node_count_hist=(0, 0, 0, 1, 1, 1))
    p = build_process({"name": "pfgm", "D": 64, "sigma_max": 5.0, "node_features": "degree", "max_feat_num": 3},
                      schema)
    torch.manual_seed(0)
    net = GDSSDenoiser(x_net={"type": "gcn", "depth": 1, "nhid": 8},
                       adj_net={"nhid": 8, "num_layers": 2, "adim": 8, "c_hid": 4, "c_final": 2}, **p.denoiser_kwargs())
    et = torch.zeros(2, 5, 5, dtype=torch.long)
    et[:, 0, 1] = et[:, 1, 0] = et[:, 1, 2] = et[:, 2, 1] = 1
    batch = GraphState.from_types(torch.zeros(2, 5, dtype=torch.long), et,
                                  torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool(), schema)
    loss = p.loss(net, batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in net.parameters())
    out = sample(p, net, torch.tensor([3, 5]), steps=3, sampler="euler", seed=0)
    assert out.e.shape[-1] == 2 and torch.equal(out.edge_types(), out.edge_types().transpose(1, 2))


def test_sigma_data_and_P_mean_auto_are_measured_on_the_training_data():
    """A series whose windows vary by a few percent of their level: ``auto`` puts sigma_data at the spread of the
    scaled training values and moves EDM's P_mean (-1.2 for 0.5) with it; the saved config holds the numbers."""
    import math

    import numpy as np

    from graphdiff.data.series import ForecastTask, TimeSeries
    from graphdiff.data.series_windows import SeriesWindows
    from graphdiff.pipeline import GraphDiffusionPipeline

    t = np.arange(200)
    ts = TimeSeries("calm", 100 + 2 * np.sin(2 * np.pi * t / 8), "D",
                    np.datetime64("2020-01-01") + t.astype("timedelta64[D]"),
                    task=ForecastTask(prediction_length=8, context_length=16, test_windows=2, season=8))
    ds = SeriesWindows(ts, stride=2)
    pipe = GraphDiffusionPipeline.from_preset("edm-tsdiff-taylor", ds,
                                              overrides={"process": {"sigma_data": "auto", "P_mean": "auto"}})
    train = ds.split("train")
    batch = train.batch(np.arange(len(train)))
    want = float(batch.x[batch.mask].double().std())
    assert 0.005 < want < 0.05  # far from EDM's 0.5
    assert pipe.process.sigma_data == pytest.approx(want, rel=1e-3)
    assert pipe.process.P_mean == pytest.approx(math.log(want) + math.log(2) - 1.2, abs=1e-3)
    assert pipe.config.process["sigma_data"] == pipe.process.sigma_data
    only_p = GraphDiffusionPipeline.from_preset("edm-tsdiff-taylor", ds, overrides={"process": {"P_mean": "auto"}})
    assert only_p.process.sigma_data == 0.5 and only_p.process.P_mean == pytest.approx(-1.2)


def test_sigma_data_auto_is_for_fixed_graphs():
    with pytest.raises(ConfigError, match="applies to fixed-graph data"):
        EDMProcess.resolve({"name": "edm", "sigma_data": "auto"},
                           Schema(node_categories=("node",), edge_categories=("none", "edge"), max_nodes=5))
    with pytest.raises(ConfigError, match="process.sigma_data: need a number, got 'auto'"):
        EDMProcess(ImageGrid(4, 4).schema(1), sigma_data="auto")
