"""DiGress / DeFoG Lightning checkpoints written here land in `digress_transformer`, which computes what the
authors' network does (checked against tests/convert/digress_reference.py), with the authors' input features."""

import math

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphdiff.convert.checkpoints import import_checkpoint
from graphdiff.errors import CheckpointError
from graphdiff.nn.digress_features import defog_rrwp, digress_cycles, digress_eigen, molecular_features
from graphdiff.nn.features import cycle_counts
from graphdiff.pipeline import GraphDiffusionPipeline
from graphdiff.state import GraphState
from tests.convert.digress_reference import digress_state, reference_forward
from tests.data.test_safe_pickle import fake_modules


class SpectreDatasetInfos:  # the authors' dataset-info object, as save_hyperparameters pickles it
    def __init__(self, **kw):
        self.__dict__.update(kw)


class QM9infos(SpectreDatasetInfos):
    pass


GRAPH_INFOS = dict(name="planar", max_n_nodes=6, n_nodes=torch.tensor([0, 0, 0, 0.2, 0.3, 0.1, 0.4]),
                   node_types=torch.tensor([1.0]), edge_types=torch.tensor([0.7, 0.3]))
QM9_INFOS = dict(name="qm9", remove_h=True, atom_decoder=["C", "N", "O", "F"], valencies=[4, 3, 2, 1],
                 atom_weights={0: 12, 1: 14, 2: 16, 3: 19}, max_weight=150, max_n_nodes=6,
                 n_nodes=torch.tensor([0, 0, 0.1, 0.2, 0.3, 0.2, 0.2]),
                 node_types=torch.tensor([0.72, 0.12, 0.15, 0.01]),
                 edge_types=torch.tensor([0.7, 0.24, 0.03, 0.01, 0.02]))


def write_ckpt(path, fmt, *, extra=None, infos=GRAPH_INFOS, heads=4, state=None, **sizes):
    cls = QM9infos if "atom_decoder" in infos else SpectreDatasetInfos
    model = {"n_layers": 2, "hidden_dims": {"n_head": heads, "dim_ffy": 128}, "extra_features": extra,
             "transition": "marginal", "diffusion_steps": 7, "diffusion_noise_schedule": "cosine", "rrwp_steps": 3}
    cfg = {"model": model, "dataset": {"name": infos["name"]}}
    if fmt == "defog":
        cfg["sample"] = {"sample_steps": 5, "time_distortion": "polydec", "eta": 0.5, "omega": 0.1}
    sd = state if state is not None else digress_state(y_extra=64 if fmt == "defog" else 0, **sizes)
    with fake_modules(src__datasets__spectre_dataset__SpectreDatasetInfos=cls):
        torch.save({"state_dict": sd, "epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.0.6",
                    "hyper_parameters": {"cfg": cfg, "dataset_infos": cls(**infos)}}, path)
    return sd


def graph_batch(kx, ke, sizes=(6, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = max(sizes)
    mask = torch.arange(n)[None] < torch.tensor(sizes)[:, None]
    x = F.one_hot(torch.randint(0, kx, (len(sizes), n), generator=g), kx).float() * mask[..., None]
    et = torch.randint(0, ke, (len(sizes), n, n), generator=g).triu(1)
    et = et + et.transpose(1, 2)
    et = torch.where(mask[:, :, None] & mask[:, None, :], et, 0)
    return GraphState(x=x, e=F.one_hot(et, ke).float(), mask=mask)  # diagonal and padding: "none", as ours do


def sinusoid(t, dim=64):  # DeFoG's time embedding, from its definition
    w = torch.exp(-math.log(10000.0) * torch.arange(dim // 2) / (dim // 2))
    return torch.cat([torch.cos(t[:, None] * w), torch.sin(t[:, None] * w)], -1)


@pytest.mark.parametrize("fmt", ["digress", "defog"])
def test_an_imported_checkpoint_computes_what_the_authors_network_does(tmp_path, fmt):
    sd = write_ckpt(tmp_path / "m.ckpt", fmt, x_in=1, e_in=2, y_in=1, x_out=1, e_out=2)
    s = import_checkpoint(tmp_path / "m.ckpt", fmt, tmp_path / "out")
    assert s["tensors"] == len(sd) and s["graphdiff_dataset"] == "planar"
    pipe = GraphDiffusionPipeline.from_pretrained(tmp_path / "out")
    net = pipe.denoiser.eval()
    assert type(net).__name__ == "DiGressTransformerDenoiser"
    assert set(net.state_dict()) == {k[len("model."):] for k in sd}  # the authors' names, one for one
    batch = graph_batch(1, 2)
    t = torch.tensor([0.3, 0.8])
    out = net(batch, t)
    y = t[:, None] if fmt == "digress" else torch.cat([t[:, None], sinusoid(t)], -1)
    rx, re_ = reference_forward(sd, batch.x, batch.e, y, batch.mask, heads=4)
    torch.testing.assert_close(out.x.double(), rx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.e.double(), re_, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.e, out.e.transpose(1, 2)) and out.e.diagonal(dim1=1, dim2=2).abs().sum() == 0
    assert out.x[1, 4:].abs().sum() == 0 and out.e[1, 4:].abs().sum() == 0  # padding masked
    cfg = pipe.config
    if fmt == "digress":
        assert cfg.process["name"] == "digress" and cfg.process["T"] == 7 and cfg.sample.steps == 7
    else:
        assert cfg.process["name"] == "defog" and cfg.sample.steps == 5
        assert cfg.sample.knobs == {"time_distortion": "polydec", "eta": 0.5, "omega": 0.1}
    assert pipe.process.schema.node_count_hist[3:] == (200_000, 300_000, 100_000, 400_000)
    samples = pipe.sample(3, steps=2, seed=0, progress=False)  # the imported pipeline samples
    assert samples.x.shape[0] == 3 and torch.isfinite(samples.e).all()


def test_the_network_is_permutation_equivariant_on_a_full_batch(tmp_path):
    write_ckpt(tmp_path / "m.ckpt", "digress", extra="cycles", x_in=4, e_in=2, y_in=6, x_out=1, e_out=2)
    import_checkpoint(tmp_path / "m.ckpt", "digress", tmp_path / "out")
    net = GraphDiffusionPipeline.from_pretrained(tmp_path / "out").denoiser.eval()
    batch = graph_batch(1, 2, sizes=(6, 6), seed=3)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    pb = GraphState(x=batch.x[:, perm], e=batch.e[:, perm][:, :, perm], mask=batch.mask)
    t = torch.tensor([0.5, 0.5])
    a, b = net(batch, t), net(pb, t)
    torch.testing.assert_close(a.x[:, perm], b.x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.e[:, perm][:, :, perm], b.e, atol=1e-5, rtol=1e-5)


def test_a_qm9_checkpoint_with_all_features_reads_the_authors_inputs(tmp_path):
    # DiGress QM9: X = 4 atoms + 3 cycles + 1 non-LCC + 2 eigenvectors + charge, valence; y = n, 4 cycles,
    # components, 5 eigenvalues, weight, t
    sd = write_ckpt(tmp_path / "q.ckpt", "digress", extra="all", infos=QM9_INFOS, x_in=12, e_in=5, y_in=13, x_out=4,
                    e_out=5)
    s = import_checkpoint(tmp_path / "q.ckpt", "digress", tmp_path / "out")
    assert s["node_categories"] == ["C", "N", "O", "F"] and s["molecular_features"]
    pipe = GraphDiffusionPipeline.from_pretrained(tmp_path / "out")
    assert pipe.process.schema.edge_categories == ("none", "SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
    net = pipe.denoiser.eval()
    batch = graph_batch(4, 5, sizes=(5, 3), seed=1)
    t = torch.tensor([0.2, 0.9])
    x_in, e_in, y_in = net.inputs(batch, t, torch.zeros(2, 0))
    assert x_in.shape[-1] == 12 and y_in.shape[-1] == 13 and torch.equal(y_in[:, -1], t)
    out = net(batch, t)
    rx, re_ = reference_forward(sd, x_in, e_in, y_in, batch.mask, heads=4)
    torch.testing.assert_close(out.x.double(), rx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.e.double(), re_, atol=1e-5, rtol=1e-5)


# ---- the authors' features against definitions -------------------------------------------------------------------
def adjacency(graphs, n):
    a = torch.zeros(len(graphs), n, n)
    for i, g in enumerate(graphs):
        a[i, : g.number_of_nodes(), : g.number_of_nodes()] = torch.tensor(nx.to_numpy_array(g, nodelist=range(
            g.number_of_nodes())))
    mask = torch.arange(n)[None] < torch.tensor([g.number_of_nodes() for g in graphs])[:, None]
    return a, mask


def test_cycle_features_agree_with_exact_counts_except_the_authors_five_cycles():
    graphs = [nx.cycle_graph(5), nx.complete_graph(4), nx.petersen_graph(), nx.gnp_random_graph(9, 0.4, seed=2),
              nx.cycle_graph(6), nx.gnp_random_graph(10, 0.3, seed=5)]
    a, mask = adjacency(graphs, 10)
    x, y = digress_cycles(a, mask)
    node, graph = cycle_counts(a, mask)
    exact_x, exact_y = (node / 10).clamp(max=1), (graph / 10).clamp(max=1)
    torch.testing.assert_close(x[..., :2], exact_x[..., :2])  # 3- and 4-cycles per node
    torch.testing.assert_close(y[:, [0, 1, 3]], exact_y[:, [0, 1, 3]])  # 3-, 4- and 6-cycles per graph
    free = [0, 2, 4]  # triangle-free graphs: the 5-cycle formula is exact
    torch.testing.assert_close(x[free, :, 2], exact_x[free, :, 2])
    torch.testing.assert_close(y[free, 2], exact_y[free, 2])
    assert node[1, :4, 2].tolist() == [0] * 4 and x[1, :4, 2].tolist() == pytest.approx([0.6] * 4)  # K4


def test_eigen_features_follow_the_authors_definitions():
    g = nx.disjoint_union(nx.path_graph(4), nx.path_graph(2))  # 2 components, the largest has nodes 0-3
    a, mask = adjacency([g, nx.cycle_graph(3)], 7)
    x, y = digress_eigen(a, mask, "all")
    lap = nx.laplacian_matrix(g).toarray().astype(float)
    ev = np.sort(np.linalg.eigvalsh(lap)) / 6
    assert y[0, 0] == 2 and np.allclose(y[0, 1:5].numpy(), ev[2:6]) and y[0, 5] == pytest.approx(2 * 7 / 6)
    assert x[0, :, 0].tolist() == [0, 0, 0, 0, 1, 1, 0]  # not in the largest component
    assert y[1, 0] == 1 and np.allclose(y[1, 1:3].numpy(), [1.0, 1.0]) and y[1, 3] == pytest.approx(14 / 3)
    fiedler = x[0, :, 1].numpy()  # eigenvector of the 3rd-smallest eigenvalue, up to sign
    assert np.allclose(lap @ fiedler[:6], ev[2] * 6 * fiedler[:6], atol=1e-5) and fiedler[6] == 0


def test_rrwp_and_molecular_features_follow_the_authors_definitions():
    a, mask = adjacency([nx.path_graph(3)], 3)
    x, e = defog_rrwp(a, 3)
    m = np.array([[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]])
    assert np.allclose(e[0, ..., 0].numpy(), np.eye(3)) and np.allclose(e[0, ..., 2].numpy(), m @ m)
    assert np.allclose(x[0].numpy(), [[1, 0, 0.5], [1, 0, 1], [1, 0, 0.5]])  # return probabilities
    # C=O-N with the O-N bond aromatic (index 4), a padded slot: indices, not chemistry, as the authors compute
    xs = F.one_hot(torch.tensor([[0, 2, 1, 0]]), 4).float() * torch.tensor([1, 1, 1, 0.0])[None, :, None]
    et = torch.zeros(1, 4, 4, dtype=torch.long)
    et[0, 0, 1] = et[0, 1, 0] = 2
    et[0, 1, 2] = et[0, 2, 1] = 4
    feats, w = molecular_features(xs, F.one_hot(et, 5).float(), [4, 3, 2, 1], [12, 14, 16, 19], 150)
    assert feats[0, :, 1].tolist() == [2, 6, 4, 0] and feats[0, :, 0].tolist() == [-2, -4, -3, 0]
    assert w[0, 0].item() == pytest.approx((12 + 16 + 14 + 12) / 150)  # padding counted as atom type 0


# ---- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit,match", [
    (lambda sd: sd.pop("model.tf_layers.1.self_attn.e_mul.bias"),
     r"state_dict has no 'model\.tf_layers\.1\.self_attn\.e_mul\.bias' \(16,\)"),
    (lambda sd: sd.update({"model.tf_layers.0.self_attn.e_out.weight": torch.zeros(8, 8)}),
     r"DiGress tensor 'model\.tf_layers\.0\.self_attn\.e_out\.weight' is \(8, 8\), graphdiff's is \(8, 16\)"),
    (lambda sd: sd.update({"model.tf_layers.0.self_attn.q_e.weight": torch.zeros(8, 16)}),
     r"DiGress tensor 'model\.tf_layers\.0\.self_attn\.q_e\.weight' \(8, 16\) has no counterpart"),
    (lambda sd: sd.update({"model.mlp_in_y.0.weight": torch.zeros(16, 5)}),
     r"'model\.mlp_in_y\.0\.weight' reads 5 inputs, extra_features=None gives 1 \(0 features \+ t, no condition\)"),
])
def test_a_bad_tensor_is_one_line_naming_it(tmp_path, edit, match):
    sd = digress_state(x_in=1, e_in=2, y_in=1, x_out=1, e_out=2)
    edit(sd)
    write_ckpt(tmp_path / "m.ckpt", "digress", state=sd)
    with pytest.raises(CheckpointError, match=match) as err:
        import_checkpoint(tmp_path / "m.ckpt", "digress", tmp_path / "out")
    assert str(err.value).startswith(str(tmp_path / "m.ckpt")) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_imports_a_defog_checkpoint(tmp_path, capsys):
    from graphdiff.cli import main

    write_ckpt(tmp_path / "d.ckpt", "defog", extra="rrwp", x_in=4, e_in=5, y_in=6, x_out=1, e_out=2)
    assert main(["import-checkpoint", "--format", "defog", str(tmp_path / "d.ckpt"), "--out",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "sampler=ctmc" in out and "time_distortion=polydec" in out and "dataset_infos.n_nodes" in out
    net = GraphDiffusionPipeline.from_pretrained(tmp_path / "out").denoiser
    assert net.features.mode == "rrwp" and net.features.rrwp_steps == 3 and net.time_embedding == 64
    sd = digress_state(x_in=4, e_in=5, y_in=6, x_out=1, e_out=2)  # RRWP on the edges: 2 + 3 inputs
    write_ckpt(tmp_path / "g.ckpt", "digress", extra="rrwp", state=sd)  # DiGress has no RRWP
    assert main(["import-checkpoint", "--format", "digress", str(tmp_path / "g.ckpt"), "--out",
                 str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'g.ckpt'}: hyper_parameters.cfg.model.extra_features='rrwp'")
    assert "\n" not in err
