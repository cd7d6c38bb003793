"""`graphdiff import-checkpoint`: files written here in the GDSS (.pth) and DiGress/DeFoG (Lightning .ckpt) formats."""

import collections
import os

import pytest
import torch

from graphdiff.cli import main
from graphdiff.convert.checkpoints import import_checkpoint
from graphdiff.convert.checkpoints.gdss import map_state
from graphdiff.errors import CheckpointError
from graphdiff.nn import ScoreNetworkA, ScoreNetworkX, ScoreNetworkX_GMH
from graphdiff.pipeline import GraphDiffusionPipeline
from tests.convert import gdss_reference as ref
from tests.convert.digress_reference import digress_state

A = dict(nhid=8, num_layers=3, num_linears=3, c_init=2, c_hid=4, c_final=3, adim=8, num_heads=2)
GMH = dict(depth=2, nhid=8, num_linears=3, c_init=2, c_hid=4, c_final=3, adim=8, num_heads=2)


def inputs(nf, n=6, sizes=(6, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    flags = (torch.arange(n)[None] < torch.tensor(sizes)[:, None]).double()
    x = torch.randn(len(sizes), n, nf, generator=g, dtype=torch.float64) * flags[..., None]
    a = torch.randn(len(sizes), n, n, generator=g, dtype=torch.float64).triu(1)
    return x, (a + a.transpose(1, 2)) * flags[:, :, None] * flags[:, None, :], flags


@pytest.mark.parametrize("conv", ["GCN", "MLP"])
def test_gdss_networks_compute_what_the_authors_do(conv):
    x, adj, flags = inputs(3)
    theirs = ref.layout_a(nf=3, conv=conv, **A)
    net = ScoreNetworkA(in_dim=3, conv=conv, **A).double()
    state, dropped = map_state(theirs, net, "ScoreNetworkA", A["num_layers"] - 1, "t", "adj_state_dict")
    net.load_state_dict(state)
    want = ref.forward_a(theirs, x, adj, flags, num_layers=3, c_init=2, heads=2, nhid=8, conv=conv)
    assert torch.allclose(net(x, adj, flags.bool()), want, atol=1e-10)
    assert dropped and all(".gnn_v." in k or ".multi_channel." in k for k in dropped)  # the unused node output

    theirs = ref.layout_x_gmh(nf=3, conv=conv, **GMH)
    net = ScoreNetworkX_GMH(in_dim=3, conv=conv, **GMH).double()
    state, dropped = map_state(theirs, net, "ScoreNetworkX_GMH", GMH["depth"] - 1, "t", "x_state_dict")
    net.load_state_dict(state)
    want = ref.forward_x_gmh(theirs, x, adj, flags, depth=2, c_init=2, heads=2, nhid=8, conv=conv)
    assert torch.allclose(net(x, adj, flags.bool()), want, atol=1e-10)
    assert dropped and all(".mlp." in k or ".gnn_q." in k or ".gnn_k." in k for k in dropped)


def _cfg(data, n_max, nf, init, sde="VP", sampler=None):
    sdes = {k: {"type": sde, "beta_min": 0.1, "beta_max": 1.0, "num_scales": 1000} for k in ("x", "adj")}
    out = {"data": {"data": data, "max_node_num": n_max, "max_feat_num": nf, "init": init, "batch_size": 8},
           "sde": sdes, "model": {"x": "ScoreNetworkX", "adj": "ScoreNetworkA"},
           "train": {"ema": 0.999, "eps": 1e-5}, "seed": 42}
    if sampler:
        out["sampler"], out["sample"] = sampler, {"use_ema": True, "eps": 1e-4}
    return out


def gdss_file(path, *, data="community_small", n_max=20, nf=10, init="deg", ema=True, sampler=None, sde="VP",
              drop=None, extra=None):
    """A .pth with the GDSS checkpoint layout: plain dicts and random tensors, saved with torch.save."""
    xs = collections.OrderedDict((k, v.float()) for k, v in ref.layout_x(nf=nf, depth=2, nhid=8, seed=1).items())
    adj = collections.OrderedDict((k, v.float()) for k, v in ref.layout_a(nf=nf, seed=2, **A).items())
    ck = {"model_config": _cfg(data, n_max, nf, init, sde, sampler),
          "params_x": {"model_type": "ScoreNetworkX", "max_feat_num": nf, "depth": 2, "nhid": 8},
          "params_adj": {"model_type": "ScoreNetworkA", "max_feat_num": nf, "max_node_num": n_max, **A,
                         "conv": "GCN"},
          "x_state_dict": xs, "adj_state_dict": adj}
    if ema:
        ck["ema_x"] = {"decay": 0.999, "num_updates": 5, "shadow_params": [v * 0 + 0.5 for v in xs.values()]}
        ck["ema_adj"] = {"decay": 0.999, "num_updates": 5, "shadow_params": [v * 0 - 0.5 for v in adj.values()]}
    for key in drop or ():
        ck.pop(key)
    ck.update(extra or {})
    torch.save(ck, path)
    return ck


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")  # synth_community_small is generated there (no network)


EULER_LANGEVIN = {"predictor": "Euler", "corrector": "Langevin", "snr": 0.05, "scale_eps": 0.7, "n_steps": 1}


def test_a_gdss_graph_checkpoint_lands_tensor_for_tensor(tmp_path, data_root):
    ck = gdss_file(tmp_path / "g.pth", sampler=EULER_LANGEVIN)
    s = import_checkpoint(tmp_path / "g.pth", "gdss", tmp_path / "out", dataset="synth_community_small",
                          root=data_root)
    assert s["ema"] and s["tensors"] == len(ck["x_state_dict"]) + len(ck["adj_state_dict"]) - len(s["dropped_unused"])
    pipe = GraphDiffusionPipeline.from_pretrained(tmp_path / "out", use_ema=False)
    den = pipe.denoiser.double()
    x, adj, flags = inputs(10, n=8, sizes=(8, 5))
    p_adj = {k: v.double() for k, v in ck["adj_state_dict"].items()}
    p_x = {k: v.double() for k, v in ck["x_state_dict"].items()}
    want_a = ref.forward_a(p_adj, x, adj, flags, num_layers=3, c_init=2, heads=2, nhid=8)
    assert torch.allclose(den.adj_net(x, adj, flags.bool()), want_a, atol=1e-10)
    assert torch.allclose(den.x_net(x, adj, flags.bool()), ref.forward_x(p_x, x, adj, flags, depth=2), atol=1e-10)
    ema_pipe = GraphDiffusionPipeline.from_pretrained(tmp_path / "out", use_ema=True)
    ema = ema_pipe.denoiser
    assert all(bool((p == 0.5).all()) for p in ema.x_net.parameters())  # the shadow parameters, in order
    assert all(bool((p == -0.5).all()) for p in ema.adj_net.parameters())
    cfg = pipe.config
    assert cfg.sample.sampler == "pc" and cfg.sample.knobs == {"eps": 1e-4, "predictor": "euler", "snr": 0.05,
                                                               "scale_eps": 0.7, "n_corrector": 1}
    assert cfg.sample.use_ema and cfg.sample.steps == 1000
    assert cfg.process["node_features"] == "degree" and cfg.process["max_feat_num"] == 10
    assert cfg.model["adj_net"]["variant"] == "gdss" and pipe.schema.node_categories == ("node",)
    assert sum(pipe.schema.node_count_hist) > 0 and pipe.schema.max_nodes == 20
    assert len(ema_pipe.sample(2, steps=2, output="networkx", progress=False)) == 2


def test_a_gdss_qm9_checkpoint_gets_its_own_schema_and_the_papers_sampler(tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text("CCO\nC=O\nCC(C)N\nOCC#N\nFC(F)C\nCCCO\n")
    gdss_file(tmp_path / "q.pth", data="QM9", n_max=9, nf=4, init="atom", ema=False, sde="VE")
    s = import_checkpoint(tmp_path / "q.pth", "gdss", tmp_path / "out", dataset=str(smi), root=tmp_path / "r")
    assert s["node_categories"] == ["C", "N", "O", "F"] and not s["ema"]
    pipe = GraphDiffusionPipeline.from_pretrained(tmp_path / "out")
    assert pipe.schema.kind == "molecule" and pipe.schema.max_nodes == 9
    assert pipe.config.process["node_decoding"] == "threshold" and pipe.config.process["sde_x"]["type"] == "VE"
    assert pipe.config.sample.knobs == {"eps": 1e-4, "predictor": "reverse", "snr": 0.2, "scale_eps": 0.7,
                                        "n_corrector": 1}
    assert pipe.config.sample.num_samples == 10_000 and pipe.config.sample.use_ema is False
    assert "q.pth (QM9, sha256 " in pipe.config.description  # config.json says where the weights came from
    assert len(pipe.sample(2, steps=2, output="rdkit", progress=False)) == 2


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    gdss_file(tmp_path / "evil.pth", extra={"model_config": Evil()})
    with pytest.raises(CheckpointError, match=r"evil\.pth: refusing to unpickle global (posix|os)\.system"):
        import_checkpoint(tmp_path / "evil.pth", "gdss", tmp_path / "out")
    import pickle

    (tmp_path / "evil2.pth").write_bytes(pickle.dumps({"model_config": Evil()}))  # not even a torch archive
    for fmt in ("gdss", "digress"):
        with pytest.raises(CheckpointError, match="refusing to unpickle"):
            import_checkpoint(tmp_path / "evil2.pth", fmt, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("change,match", [
    ({"drop": ["params_adj"]}, r"params_adj is missing"),
    ({"extra": {"params_x": {"model_type": "ScoreNetworkY"}}}, r"params_x.model_type 'ScoreNetworkY'"),
    ({"extra": {"x_state_dict": {**ref.layout_x(nf=10, depth=2, nhid=8), "layers.9.weight": torch.zeros(2)}}},
     r"x_state_dict tensor 'layers.9.weight' \(2,\) has no counterpart"),
    ({"extra": {"x_state_dict": {**ref.layout_x(nf=10, depth=2, nhid=8), "layers.0.bias": torch.zeros(5)}}},
     r"'layers.0.bias' is \(5,\), graphdiff's 'layers.0.bias' is \(8,\)"),
    ({"extra": {"x_state_dict": {k: v for k, v in ref.layout_x(nf=10, depth=2, nhid=8).items()
                                 if k != "final.linears.2.bias"}}},
     r"x_state_dict has no tensor for graphdiff's 'final.linears.2.bias'"),
    ({"extra": {"model_config": {"data": {"data": "QM9"}}}}, r"model_config.data.max_feat_num is missing"),
])
def test_a_bad_gdss_file_is_one_line_naming_the_file_and_the_key(tmp_path, change, match):
    gdss_file(tmp_path / "bad.pth", ema=False, **change)
    with pytest.raises(CheckpointError, match=match) as err:
        import_checkpoint(tmp_path / "bad.pth", "gdss", tmp_path / "out", dataset="synth_community_small",
                          root=tmp_path)
    assert str(err.value).startswith(str(tmp_path / "bad.pth")) and "\n" not in str(err.value)


# ---- DiGress / DeFoG Lightning checkpoints -----------------------------------------------------------------------
def test_lightning_files_without_the_network_are_named(tmp_path):
    torch.save({"epoch": 1}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match=r"a\.ckpt: no 'state_dict' \(not a Lightning checkpoint\)"):
        import_checkpoint(tmp_path / "a.ckpt", "defog", tmp_path / "out")
    torch.save({"state_dict": {"ema.w": torch.zeros(1)}}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointError, match=r"b\.ckpt: state_dict has no 'model\.' tensors"):
        import_checkpoint(tmp_path / "b.ckpt", "digress", tmp_path / "out")
    torch.save({"state_dict": digress_state()}, tmp_path / "c.ckpt")
    with pytest.raises(CheckpointError, match=r"c\.ckpt: hyper_parameters\.cfg\.model is missing"):
        import_checkpoint(tmp_path / "c.ckpt", "digress", tmp_path / "out")


def test_cli_import_checkpoint(tmp_path, capsys, data_root):
    gdss_file(tmp_path / "g.pth", sampler={"predictor": "Euler", "corrector": "None"})
    assert main(["import-checkpoint", "--format", "gdss", str(tmp_path / "g.pth"), "--out", str(tmp_path / "out"),
                 "--dataset", "synth_community_small", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "with EMA weights" in out and "sampler=em" in out and str(tmp_path / "out") in out
    assert GraphDiffusionPipeline.from_pretrained(tmp_path / "out").config.sample.sampler == "em"
    # its card says whose weights they are
    assert main(["models", "pack", str(tmp_path / "out"), "--name", "imp", "--out", str(tmp_path / "packed"),
                 "--samples", "2", "--steps", "2", "--root", str(data_root)]) == 0
    card = (tmp_path / "packed" / "README.md").read_text()
    assert "not trained by graphdiff: the GDSS authors' checkpoint g.pth" in card and "own commands" not in card
    # an import over a (packed) model is refused; --overwrite replaces it and the card that described it
    capsys.readouterr()
    weights = (tmp_path / "packed" / "model.safetensors").read_bytes()
    again = ["import-checkpoint", "--format", "gdss", str(tmp_path / "g.pth"), "--out", str(tmp_path / "packed"),
             "--dataset", "synth_community_small", "--root", str(data_root)]
    assert main(again) == 2
    assert "holds a model; --overwrite replaces it" in capsys.readouterr().err
    assert (tmp_path / "packed" / "model.safetensors").read_bytes() == weights  # nothing touched
    assert main([*again, "--overwrite"]) == 0
    assert not (tmp_path / "packed" / "README.md").exists() and not (tmp_path / "packed" / "metrics.json").exists()
    capsys.readouterr()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    for argv in (["--format", "gdss", str(tmp_path / "junk.pth")], ["--format", "defog", str(tmp_path / "none.ckpt")],
                 ["--format", "digress", str(tmp_path / "g.pth")]):
        assert main(["import-checkpoint", *argv, "--out", str(tmp_path / "o2")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {argv[2]}") and "\n" not in err
    o2 = str(tmp_path / "o2")
    assert main(["import-checkpoint", "--format", "digress", str(tmp_path / "g.pth"), "--out", o2]) == 2
    assert capsys.readouterr().err.strip().endswith("--format gdss")
    whole = (tmp_path / "g.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])  # a download cut short
    assert main(["import-checkpoint", "--format", "gdss", str(tmp_path / "cut.pth"), "--out", o2]) == 2
    assert "a truncated torch checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["import-checkpoint", "--format", "pard", str(tmp_path / "g.pth"), "--out", str(tmp_path / "o3")])
    # subnormal weights (as in the authors' checkpoints) are counted, and zero once loaded for sampling
    ck = gdss_file(tmp_path / "s.pth", sampler=EULER_LANGEVIN)  # sampled with the EMA weights
    first = next(i for i, v in enumerate(ck["adj_state_dict"].values()) if v.dim() == 2)
    ck["ema_adj"]["shadow_params"][first].view(-1)[:5] = 1e-40
    torch.save(ck, tmp_path / "s.pth")
    assert main(["import-checkpoint", "--format", "gdss", str(tmp_path / "s.pth"), "--out", str(tmp_path / "o4"),
                 "--dataset", "synth_community_small", "--root", str(data_root)]) == 0
    assert "subnormal weights: 5 of " in capsys.readouterr().out
    assert GraphDiffusionPipeline.from_pretrained(tmp_path / "o4").flushed_subnormal == 5


def test_gcn_node_network_is_the_authors_too():
    x, adj, flags = inputs(3)
    theirs = ref.layout_x(nf=3, depth=3, nhid=8)
    net = ScoreNetworkX(in_dim=3, depth=3, nhid=8).double()
    state, dropped = map_state(theirs, net, "ScoreNetworkX", 2, "t", "x_state_dict")
    net.load_state_dict(state)
    assert not dropped
    assert torch.allclose(net(x, adj, flags.bool()), ref.forward_x(theirs, x, adj, flags, depth=3), atol=1e-10)
