"""Fine-tuning: alignment by name, grown networks that start from the base predictions, LoRA, lineage, errors."""

import json

import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.cli import main
from graphdiff.errors import ConfigError
from graphdiff.finetune import align, remap
from graphdiff.nn.transformer import GraphTransformerDenoiser
from graphdiff.schema import Schema
from graphdiff.state import GraphState

# molecules with atoms the QM9 model never saw (S, Cl, Br)
NEW_ATOMS = ["CCS", "c1ccsc1", "ClCC(=O)O", "CC(Cl)CS", "OCCSC", "CSc1ccccc1", "ClC1CCCC1", "NCCS", "BrCCO",
             "CC(=O)SC"] * 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    (d / "new.smi").write_text("\n".join(NEW_ATOMS) + "\n")
    return d


def _state(kx, ke, n=5, b=3, seed=0, extra_x=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.one_hot(torch.randint(0, kx, (b, n), generator=g), kx + extra_x).float()
    e = torch.randint(0, ke, (b, n, n), generator=g)
    e = torch.triu(e, 1)
    e = torch.nn.functional.one_hot(e + e.transpose(1, 2), ke).float()
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, -1] = False
    return GraphState(x=x, e=e, mask=mask).masked()


@pytest.mark.parametrize("mask_channel", [0, 1])  # 1: an absorbing [MASK] input channel after the categories
def test_grown_transformer_starts_from_the_base_predictions(mask_channel):
    torch.manual_seed(0)
    kx, ke = 4, 3
    base = GraphTransformerDenoiser(node_dim=kx + mask_channel, node_out=kx, edge_dim=ke, max_nodes=9, n_layers=2,
                                    hidden_x=16, hidden_e=8, hidden_y=8, n_heads=2, ff_x=16, ff_e=8, ff_y=8,
                                    extra_features=("cycles",)).eval()
    grown = GraphTransformerDenoiser(node_dim=kx + mask_channel, node_out=kx, edge_dim=ke, max_nodes=9, n_layers=2,
                                     hidden_x=16, hidden_e=8, hidden_y=8, n_heads=2, ff_x=16, ff_e=8, ff_y=8,
                                     extra_features=("cycles",)).eval()
    grown.load_state_dict(base.state_dict())
    grown.grow(node_new=2, edge_new=1, max_nodes=30, cond_dim=3)
    assert (grown.node_dim, grown.node_out, grown.edge_dim, grown.max_nodes, grown.cond_dim) == \
        (kx + 2 + mask_channel, kx + 2, ke + 1, 30, 3)
    st = _state(kx, ke, extra_x=mask_channel)
    t = torch.full((3,), 0.4)
    with torch.no_grad():
        a = base(st, t)
        # the same graphs in the grown layout: zeros for the new categories, [MASK] moved behind them
        x = torch.cat([st.x[..., :kx], torch.zeros(3, 5, 2), st.x[..., kx:]], -1)
        e = torch.cat([st.e, torch.zeros(3, 5, 5, 1)], -1)
        b = grown(GraphState(x=x, e=e, mask=st.mask), t, torch.randn(3, 3))
    assert torch.allclose(b.x[..., :kx], a.x, atol=1e-5) and torch.allclose(b.e[..., :ke], a.e, atol=1e-5)
    assert b.x.shape[-1] == kx + 2 and b.e.shape[-1] == ke + 1
    grown.train()
    out = grown(GraphState(x=x, e=e, mask=st.mask), t)
    (out.x[..., kx:].sum() + out.e[..., ke:].sum()).backward()  # the new rows are trainable
    assert grown.out_x[2].weight.grad[kx:].abs().sum() > 0 and grown.out_e[2].weight.grad[ke:].abs().sum() > 0


@pytest.mark.parametrize("variant, features", [("digress", "all"), ("defog", "rrwp")])
def test_grown_digress_transformer_starts_from_the_base_predictions(variant, features):
    """The authors' DiGress / DeFoG transformer (imported checkpoints) grows as ours does: new categories, a larger
    max_nodes (the n / max_nodes feature re-scaled) and new condition columns leave the old logits unchanged."""
    from graphdiff.nn.digress_transformer import DiGressTransformerDenoiser

    torch.manual_seed(0)
    kx, ke = 4, 3
    sizes = dict(node_dim=kx, edge_dim=ke, max_nodes=9, n_layers=2, hidden_mlp_x=16, hidden_mlp_e=8,
                 hidden_mlp_y=8, dx=16, de=8, dy=8, n_head=2, ff_x=16, ff_e=8, ff_y=16, extra_features=features,
                 variant=variant, rrwp_steps=4, cond_dim=1, time_embedding=8 if variant == "defog" else 0)
    base = DiGressTransformerDenoiser(**sizes).eval()
    grown = DiGressTransformerDenoiser(**sizes).eval()
    grown.load_state_dict(base.state_dict())
    grown.grow(node_new=2, edge_new=1, max_nodes=30, cond_dim=3)
    assert (grown.node_dim, grown.node_out, grown.edge_dim, grown.max_nodes, grown.cond_dim) == \
        (kx + 2, kx + 2, ke + 1, 30, 3)
    st = _state(kx, ke)
    t = torch.full((3,), 0.4)
    with torch.no_grad():
        a = base(st, t, torch.zeros(3, 1))  # the old condition columns are dropped: compare at zero
        x = torch.cat([st.x, torch.zeros(3, 5, 2)], -1)
        e = torch.cat([st.e, torch.zeros(3, 5, 5, 1)], -1)
        b = grown(GraphState(x=x, e=e, mask=st.mask), t, torch.randn(3, 3))
    assert torch.allclose(b.x[..., :kx], a.x, atol=1e-5) and torch.allclose(b.e[..., :ke], a.e, atol=1e-5)
    assert not torch.allclose(b.x[..., kx:], torch.zeros(()))  # the new logits start at the mean old bias
    grown.train()
    out = grown(GraphState(x=x, e=e, mask=st.mask), t, torch.randn(3, 3))
    (out.x[..., kx:].sum() + out.e[..., ke:].sum()).backward()  # the new rows are trainable
    assert grown.mlp_out_X[2].weight.grad[kx:].abs().sum() > 0 and grown.mlp_out_E[2].weight.grad[ke:].abs().sum() > 0


def test_a_digress_transformer_with_molecular_features_refuses_new_categories_in_one_line():
    from graphdiff.nn.digress_transformer import DiGressTransformerDenoiser

    net = DiGressTransformerDenoiser(node_dim=4, edge_dim=5, max_nodes=9, n_layers=1, hidden_mlp_x=8, hidden_mlp_e=8,
                                     hidden_mlp_y=8, dx=8, de=8, dy=8, n_head=2, ff_x=8, ff_e=8, ff_y=8,
                                     extra_features="cycles", molecular={"valencies": [4, 3, 2, 1],
                                                                          "atom_weights": [12, 14, 16, 19],
                                                                          "max_weight": 150})
    with pytest.raises(ConfigError, match="molecular features") as info:
        net.grow(node_new=1)
    assert "\n" not in str(info.value) and net.node_dim == 4  # nothing changed
    net.grow(max_nodes=12)  # sizes alone are fine
    assert net.max_nodes == net.features.max_nodes == 12


def test_alignment_is_by_name_not_position():
    base = Schema(node_categories=("C", "N", "O"), edge_categories=("none", "SINGLE", "DOUBLE"), kind="molecule",
                  max_nodes=9, node_count_hist=(0,) * 10, node_marginals=(0.6, 0.2, 0.2),
                  edge_marginals=(0.7, 0.2, 0.1))
    data = Schema(node_categories=("O", "S", "C"), edge_categories=("none", "DOUBLE", "SINGLE"), kind="molecule",
                  max_nodes=12, node_count_hist=(0,) * 12 + (3,), node_marginals=(0.3, 0.1, 0.6),
                  edge_marginals=(0.8, 0.05, 0.15))
    a = align(base, data)
    assert a.schema.node_categories == ("C", "N", "O", "S") and a.new_nodes == ("S",)
    assert a.node_index == (2, 3, 0) and a.edge_index == (0, 2, 1)
    assert a.schema.max_nodes == 12 and a.schema.node_marginals == (0.6, 0.0, 0.3, 0.1)
    x = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2]]), 3).float()  # O, S, C in the data's order
    e = torch.zeros(1, 3, 3, 3)
    e[..., 0] = 1
    e[0, 0, 2] = e[0, 2, 0] = torch.tensor([0.0, 1.0, 0.0])  # a DOUBLE bond in the data's order
    st = remap(GraphState(x=x, e=e, mask=torch.ones(1, 3, dtype=torch.bool)), a)
    assert st.x[0].argmax(-1).tolist() == [2, 3, 0]  # O, S, C in the base's channels
    assert a.schema.edge_categories[int(st.e[0, 0, 2].argmax())] == "DOUBLE"
    with pytest.raises(ConfigError, match="graph model cannot fine-tune on molecules"):
        align(Schema.plain_graph(9), data)


def test_finetune_grows_the_bundled_model_for_new_atoms_and_records_lineage(data, capsys):
    base = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    assert "S" not in base.schema.node_categories
    before = {k: v.clone() for k, v in base.denoiser.state_dict().items()}
    smiles = base.sample(4, seed=5, steps=3, output="smiles", progress=False)
    ft = base.finetune(str(data / "new.smi"), out=data / "full", root=data / "root", max_steps=6, progress=False,
                       overrides={"train": {"batch_size": 16}})
    # the base pipeline is untouched: same weights, same schema, same samples
    after = base.denoiser.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert "S" not in base.schema.node_categories and base.denoiser.training is False
    assert base.sample(4, seed=5, steps=3, output="smiles", progress=False) == smiles
    cats = ft.schema.node_categories
    assert cats[:len(base.schema.node_categories)] == base.schema.node_categories
    assert {"S", "Cl", "Br"} <= set(cats)
    rec = ft.config.finetune.lineage[-1]
    assert rec["base"] == "qm9-defog" and rec["steps"] == 6 and len(rec["base_sha256"]) == 64
    assert set(rec["new_node_categories"]) == {"S", "Cl", "Br"} and rec["method"] == "full"
    counts = torch.tensor(ft.schema.node_count_hist)
    assert counts.sum() > 0 and ft.schema.node_marginals[cats.index("S")] > 0  # taken from the new data
    loaded = GraphDiffusionPipeline.from_pretrained(data / "full")  # <out>/model
    assert loaded.schema.node_categories == cats and loaded.trained_steps == 6
    # the bundled model is itself a fine-tune: the record counts every step behind the base's weights
    assert rec["base_steps"] == base.total_steps and loaded.total_steps == base.total_steps + 6
    a = loaded.sample(6, seed=3, output="smiles", progress=False)
    assert a == ft.sample(6, seed=3, output="smiles", progress=False)
    cfg = json.loads((data / "full" / "model" / "config.json").read_text())
    # the lineage names the data by content (name + sha256 prefix); the config by where the file is, to read it again
    assert cfg["finetune"]["lineage"][-1]["data"] == rec["data"] and rec["data"].startswith("custom/new-")
    # `models pack` of the fine-tune's model/ folder: the card names the base and reads the run's log. The config
    # records the file it was trained on by its absolute path; once that file has moved it must be named, before
    # any sample is drawn
    assert cfg["dataset"] == str((data / "new.smi").resolve())
    (data / "new.smi").rename(data / "moved.smi")
    assert main(["models", "pack", str(data / "full" / "model"), "--name", "ft", "--out", str(data / "nopack"),
                 "--samples", "6", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "not there any more" in err and "give it with --dataset FILE" in err and not (data / "nopack").exists()
    (data / "moved.smi").rename(data / "new.smi")
    assert main(["models", "pack", str(data / "full" / "model"), "--name", "ft", "--out", str(data / "packed"),
                 "--samples", "6", "--steps", "2", "--root", str(data / "root")]) == 0
    card = (data / "packed" / "README.md").read_text()
    assert f"- data: `{(data / 'new.smi').resolve()}` train split" in card
    assert f"- trained steps: 6 (this fine-tune), after {base.total_steps:,} of `qm9-defog`" in card
    assert f"- fine-tuned from `qm9-defog` ({base.total_steps:,} steps, sha256 {rec['base_sha256'][:12]})" in card
    assert "new node categories" in card and "min (this fine-tune)" in card


def test_lora_trains_adapters_only_and_merges(data):
    base = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    total = sum(p.numel() for p in base.denoiser.parameters())
    ft = base.finetune(str(data / "new.smi"), out=data / "lora", root=data / "root", max_steps=4, lora=2,
                       progress=False, overrides={"train": {"batch_size": 16}})
    rec = ft.config.finetune.lineage[-1]
    assert rec["method"] == "LoRA rank 2 (peft)" and 0 < rec["trainable_parameters"] < rec["parameters"] / 5
    assert type(ft.denoiser) is GraphTransformerDenoiser  # merged: plain names, plain module
    assert sum(p.numel() for p in ft.denoiser.parameters()) > total  # grown for the new atoms, no adapters left
    assert rec["parameters"] == sum(p.numel() for p in ft.denoiser.parameters())  # the merged model's size
    again = GraphDiffusionPipeline.from_pretrained(data / "lora")
    assert again.sample(3, seed=1, output="smiles", progress=False) == ft.sample(3, seed=1, output="smiles",
                                                                                  progress=False)


def test_finetune_resume_and_one_line_errors(data, capsys):
    out = data / "resume"
    argv = ["finetune", "--from", "qm9-defog", "--dataset", str(data / "new.smi"), "--out", str(out), "--root",
            str(data / "root"), "--quiet", "--set", "train.batch_size=16", "--set", "train.ckpt_every=2"]
    assert main([*argv, "--max-steps", "2"]) == 0
    assert "new node categories" in capsys.readouterr().out
    # without --from, molecules start from the bundled QM9 model
    assert main([a for a in argv if a not in ("--from", "qm9-defog")] + ["--max-steps", "4", "--resume"]) == 0
    assert "base model: qm9-defog (the default for molecules" in capsys.readouterr().out
    assert json.loads((out / "checkpoint" / "config.json").read_text())["step"] == 4
    assert main([*argv, "--max-steps", "4", "--resume"]) == 0  # already there: nothing to do, no error
    capsys.readouterr()
    assert json.loads((out / "checkpoint" / "config.json").read_text())["step"] == 4
    for extra, match in ((["--max-steps", "2", "--overwrite", "--freeze", "no_such_layer"], "matches no parameter"),
                         (["--max-steps", "2", "--overwrite", "--preset", "gdss-qm9"],
                          "is a gdss preset but the base model"),
                         (["--max-steps", "2", "--overwrite", "--set", "model.n_layers=2"], "may set train, finetune"),
                         (["--max-steps", "2"], "already holds a run (checkpoint at step 4)")):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    empty = data / "empty.smi"
    empty.write_text("C1CC\nnot a smiles\n")
    assert main(["finetune", "--from", "qm9-defog", "--dataset", str(empty), "--out", str(data / "e"), "--root",
                 str(data / "root"), "--max-steps", "1", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_grown_ppgn_transformer_starts_from_the_base_predictions():
    from graphdiff.nn.ppgn import PPGNTransformerDenoiser

    torch.manual_seed(1)
    kx, ke, extra = 3, 2, 2  # PARD's node input: categories, then time and start-flag channels
    kw = dict(node_dim=kx + extra, node_out=kx, edge_dim=ke, max_nodes=11, n_layers=2, hidden=16, n_heads=2)
    base, grown = PPGNTransformerDenoiser(**kw).eval(), PPGNTransformerDenoiser(**kw).eval()
    grown.load_state_dict(base.state_dict())
    grown.grow(node_new=1, edge_new=1, max_nodes=21)
    st = _state(kx, ke, extra_x=extra)
    st = GraphState(x=st.x + torch.cat([torch.zeros(3, 5, kx), torch.rand(3, 5, extra)], -1) * st.mask[..., None],
                    e=st.e, mask=st.mask)
    t = torch.full((3,), 0.7)
    with torch.no_grad():
        a = base(st, t)
        x = torch.cat([st.x[..., :kx], torch.zeros(3, 5, 1), st.x[..., kx:]], -1)
        b = grown(GraphState(x=x, e=torch.cat([st.e, torch.zeros(3, 5, 5, 1)], -1), mask=st.mask), t)
    assert torch.allclose(b.x[..., :kx], a.x, atol=1e-5) and torch.allclose(b.e[..., :ke], a.e, atol=1e-5)
    assert grown.max_nodes == 21 and b.x.shape[-1] == kx + 1


def test_graphs_finetune_from_the_bundled_multi_domain_base_by_default(tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(["finetune", "--dataset", "synth_community_small", "--out", str(out), "--root", str(tmp_path / "d"),
                 "--max-steps", "2", "--quiet", "--set", "train.batch_size=8"]) == 0
    assert "base model: lggm-base (the default for graphs" in capsys.readouterr().out
    ft = GraphDiffusionPipeline.from_pretrained(out / "model")
    rec = ft.config.finetune.lineage[-1]
    assert rec["base"] == "lggm-base" and rec["steps"] == 2
    assert len(ft.sample(3, steps=2, seed=0, output="networkx", progress=False)) == 3
    # the fine-tune's own data options (not the multi-domain base's), so its data loads again from its config
    base_options = GraphDiffusionPipeline.from_pretrained("lggm-base").config.dataset_options
    assert ft.config.dataset_options == {} and base_options
    from graphdiff.guidance import train_regressor

    reg = train_regressor(ft, "n_nodes", root=tmp_path / "d", max_steps=1, batch_size=8, log=lambda *a: None,
                          sizes={"n_layers": 1, "hidden_x": 8, "hidden_e": 4, "hidden_y": 4, "n_heads": 2,
                                 "ff_x": 8, "ff_e": 4, "ff_y": 4})
    assert reg.info["data"] == ft.config.dataset


@pytest.mark.parametrize("x_type,time_cond", [("gcn", False), ("gmh", True)])
def test_grown_gdss_starts_from_the_base_scores(x_type, time_cond):
    """GDSS reads node channels by position: new atom types are appended; every layer reading the node features
    gets new columns, the node score new rows; on old-category inputs every old output is unchanged."""
    from graphdiff.errors import SchemaError
    from graphdiff.nn import GDSSDenoiser

    torch.manual_seed(0)
    x_net = {"type": x_type, "depth": 2, "nhid": 8, "time_cond": time_cond}
    if x_type == "gmh":
        x_net.update(adim=8, num_heads=2, c_init=2, c_hid=4)
    kw = dict(x_net=x_net, adj_net={"nhid": 8, "num_layers": 2, "c_init": 2, "c_hid": 4, "c_final": 2, "adim": 8,
                                    "num_heads": 2, "conv": "MLP", "time_cond": time_cond}, x_dim=3, max_nodes=6)
    base, grown = GDSSDenoiser(**kw).eval(), GDSSDenoiser(**kw).eval()
    grown.load_state_dict(base.state_dict())
    grown.grow(node_new=2, max_nodes=9)
    assert grown.x_dim == 5 and grown.max_nodes == 9
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    x = torch.randn(2, 6, 3) * mask[..., None]
    adj = torch.rand(2, 6, 6)
    adj = (adj + adj.transpose(1, 2)) * (mask[:, :, None] & mask[:, None, :])
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        a = base(GraphState(x=x, e=adj[..., None], mask=mask), t)
        b = grown(GraphState(x=torch.cat([x, torch.zeros(2, 6, 2)], -1), e=adj[..., None], mask=mask), t)
        # the new channels are read: an input there changes the scores
        c = grown(GraphState(x=torch.cat([x, torch.ones(2, 6, 2) * mask[..., None]], -1), e=adj[..., None],
                             mask=mask), t)
    assert b.x.shape == (2, 6, 5)
    torch.testing.assert_close(b.x[..., :3], a.x)
    torch.testing.assert_close(b.e, a.e)
    assert not torch.allclose(c.e, a.e)
    grown.train()
    out = grown(GraphState(x=torch.cat([x, torch.ones(2, 6, 2) * mask[..., None]], -1), e=adj[..., None],
                           mask=mask), t)
    (out.x * torch.randn_like(out.x)).sum().backward()
    assert grown.x_net.final.linears[-1].weight.grad[3:].abs().sum() > 0  # the new scores train
    with pytest.raises(SchemaError, match="new bond type"):
        grown.grow(edge_new=1)


def test_finetune_grows_a_gdss_model_for_new_atoms(data):
    (data / "cno.smi").write_text("\n".join(["CCO", "CCN", "CC(=O)O", "NCC=O", "COC", "CC#N", "OCCO", "CNC"] * 4)
                                  + "\n")
    base = GraphDiffusionPipeline.fit(str(data / "cno.smi"), preset="gdss-qm9", out=data / "gdss-base",
                                      root=data / "root", progress=False,
                                      overrides={"train": {"max_steps": 2, "batch_size": 16, "ckpt_every": 0}})
    old = base.schema.node_categories
    ft = base.finetune(str(data / "new.smi"), out=data / "gdss-ft", root=data / "root", max_steps=2, progress=False,
                       overrides={"train": {"batch_size": 16}})
    cats = ft.schema.node_categories
    assert cats[:len(old)] == old and {"S", "Cl", "Br"} <= set(cats)
    assert ft.denoiser.x_dim == len(cats) and ft.config.finetune.lineage[-1]["new_node_categories"]
    again = GraphDiffusionPipeline.from_pretrained(data / "gdss-ft")
    assert again.sample(3, steps=3, seed=1, output="smiles", progress=False) == \
        ft.sample(3, steps=3, seed=1, output="smiles", progress=False)


def test_a_preset_gives_settings_not_its_rate_or_budget_and_a_step_budget_outlasts_the_base_epochs(data, capsys):
    argv = ["finetune", "--from", "qm9-defog", "--dataset", str(data / "new.smi"), "--root", str(data / "root"),
            "--quiet", "--preset", "defog-zinc250k", "--set", "train.batch_size=64"]
    assert main([*argv, "--out", str(data / "nobudget")]) == 2  # the preset's epochs are not a budget
    assert "give a budget" in capsys.readouterr().err
    out = data / "preset"
    assert main([*argv, "--out", str(out), "--max-steps", "2", "--set", "finetune.lr=1e-5", "--set",
                 "finetune.warmup_steps=0", "--set", "train.lr_schedule=constant"]) == 0
    lrs = {json.loads(line).get("lr") for line in (out / "log.jsonl").read_text().splitlines()} - {None}
    assert lrs == {1e-5}  # not the preset's from-scratch train.lr
    # a base whose run had one epoch: a 5-step budget on one-batch data still trains 5 steps
    one = GraphDiffusionPipeline.from_pretrained("qm9-defog").finetune(
        str(data / "new.smi"), out=data / "one_epoch", root=data / "root", progress=False,
        overrides={"train": {"batch_size": 64, "epochs": 1}})
    assert one.summary["steps"] == 1 and one.config.train.epochs == 1
    five = one.finetune(str(data / "new.smi"), out=data / "five", root=data / "root", max_steps=5, progress=False,
                        overrides={"train": {"batch_size": 64}})
    assert five.summary["steps"] == 5


def test_a_resume_keeps_the_runs_freeze_and_lora_and_a_lora_checkpoint_loads_merged(data, capsys):
    argv = ["finetune", "--from", "qm9-defog", "--dataset", str(data / "new.smi"), "--root", str(data / "root"),
            "--quiet", "--set", "train.batch_size=16"]
    frozen = data / "frozen"
    assert main([*argv, "--out", str(frozen), "--max-steps", "2", "--freeze", r"layers\.0\."]) == 0
    assert main([*argv, "--out", str(frozen), "--max-steps", "3", "--resume"]) == 0  # no --freeze given again
    cfg = json.loads((frozen / "model" / "config.json").read_text())
    assert cfg["finetune"]["freeze"] == r"layers\.0\." and "frozen" in cfg["finetune"]["lineage"][-1]["method"]
    base = GraphDiffusionPipeline.from_pretrained("qm9-defog").denoiser.state_dict()
    tuned = GraphDiffusionPipeline.from_pretrained(frozen).denoiser.state_dict()
    assert all(torch.equal(base[k], tuned[k]) for k in base if k.startswith("layers.0."))
    assert main([*argv, "--out", str(frozen), "--max-steps", "4", "--resume", "--lora", "2"]) == 2
    assert "fine-tuned with --lora 0, not 2" in capsys.readouterr().err
    lora = data / "lora_resume"
    assert main([*argv, "--out", str(lora), "--max-steps", "2", "--lora", "2", "--set", "finetune.lora_alpha=8"]) == 0
    assert main([*argv, "--out", str(lora), "--max-steps", "3", "--resume"]) == 0  # the adapters, again
    ft = json.loads((lora / "model" / "config.json").read_text())["finetune"]
    assert ft["lineage"][-1]["method"].startswith("LoRA rank 2") and ft["lora_alpha"] == 8  # its scale kept
    assert main([*argv, "--out", str(lora), "--max-steps", "4", "--resume", "--set", "finetune.lora_alpha=4"]) == 2
    assert "fine-tuned with finetune.lora_alpha 8" in capsys.readouterr().err
    mid = GraphDiffusionPipeline.from_pretrained(lora / "checkpoint")  # adapters beside the base weights: merged
    final = GraphDiffusionPipeline.from_pretrained(lora / "model")
    a, b = mid.denoiser.state_dict(), final.denoiser.state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_base_marginals_keep_the_noise_the_base_model_learned(tmp_path, capsys):
    base = GraphDiffusionPipeline.from_pretrained("lggm-base")
    runs = {}
    for which in ("data", "base"):
        out = tmp_path / which
        assert main(["finetune", "--dataset", "synth_community_small", "--out", str(out), "--root",
                     str(tmp_path / "d"), "--max-steps", "1", "--quiet", "--set", "train.batch_size=8",
                     "--set", "finetune.warmup_steps=0", "--set", f"finetune.marginals={which}"]) == 0
        runs[which] = GraphDiffusionPipeline.from_pretrained(out / "model")
    capsys.readouterr()
    data_m, base_m = runs["data"].schema.edge_marginals, runs["base"].schema.edge_marginals
    assert tuple(base_m) == tuple(base.schema.edge_marginals) != tuple(data_m)
    assert runs["base"].config.finetune.marginals == "base" and runs["data"].config.finetune.marginals == "data"
    assert runs["base"].config.finetune.lineage[-1]["marginals"] == "base"
    assert "marginals" not in runs["data"].config.finetune.lineage[-1]
    # the process's limit distribution is the schema's: the base model's noise for "base"
    assert torch.allclose(runs["base"].process.m_e.double(), torch.tensor(base.schema.edge_marginals).double())
    assert torch.allclose(runs["data"].process.m_e.double(), torch.tensor(data_m).double())
    # a resume keeps the run's choice; asking for the other is one line
    assert main(["finetune", "--dataset", "synth_community_small", "--out", str(tmp_path / "base"), "--root",
                 str(tmp_path / "d"), "--max-steps", "2", "--quiet", "--resume", "--set", "train.batch_size=8",
                 "--set", "finetune.warmup_steps=0", "--set", "finetune.marginals=data"]) == 2
    assert "fine-tuned with finetune.marginals 'base', not 'data'" in capsys.readouterr().err
    assert main(["finetune", "--dataset", "synth_community_small", "--out", str(tmp_path / "base"), "--root",
                 str(tmp_path / "d"), "--max-steps", "2", "--quiet", "--resume", "--set", "train.batch_size=8",
                 "--set", "finetune.warmup_steps=0"]) == 0
    resumed = GraphDiffusionPipeline.from_pretrained(tmp_path / "base" / "model")
    assert resumed.trained_steps == 2 and tuple(resumed.schema.edge_marginals) == tuple(base_m)
    # a fine-tune of the fine-tuned model takes its own data's marginals unless asked again
    assert main(["finetune", "--from", str(tmp_path / "base" / "model"), "--dataset", "synth_community_small",
                 "--out", str(tmp_path / "again"), "--root", str(tmp_path / "d"), "--max-steps", "1", "--quiet",
                 "--set", "train.batch_size=8", "--set", "finetune.warmup_steps=0"]) == 0
    again = GraphDiffusionPipeline.from_pretrained(tmp_path / "again" / "model")
    assert again.config.finetune.marginals == "data" and tuple(again.schema.edge_marginals) == tuple(data_m)


def test_base_marginals_refuse_new_categories_and_unknown_values(data, capsys):
    argv = ["finetune", "--from", "qm9-defog", "--dataset", str(data / "new.smi"), "--out", str(data / "m"),
            "--root", str(data / "root"), "--quiet", "--max-steps", "1"]
    for value, match in (("base", "which have no entry for the data's new categories"),
                         ("dataa", "marginals must be one of data, base, got 'dataa'")):
        assert main([*argv, "--set", f"finetune.marginals={value}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert not (data / "m" / "model").exists()


def test_base_marginals_need_a_process_whose_noise_they_set():
    from graphdiff.finetune import base_marginals

    base = GraphDiffusionPipeline.from_pretrained("lggm-base")
    a = align(base.schema, base.schema)
    kept = base_marginals(a, base.schema, base.config.process)
    assert kept.schema.edge_marginals == base.schema.edge_marginals
    for process in ({"name": "defog", "limit": "absorbing"}, {"name": "digress", "transition": "uniform"}):
        with pytest.raises(ConfigError, match=f"process has limit '{process.get('limit', 'uniform')}'"):
            base_marginals(a, base.schema, process)


def test_new_rows_and_lora_adapters_follow_train_seed_not_the_global_rng(data):
    base = GraphDiffusionPipeline.from_pretrained("qm9-defog")

    def weights(seed, noise):
        torch.manual_seed(noise)  # whatever ran before in the process
        ft = base.finetune(str(data / "new.smi"), out=data / f"seeded-{seed}-{noise}", root=data / "root",
                           max_steps=1, lora=2, progress=False,
                           overrides={"train": {"batch_size": 16, "seed": seed}})
        return torch.cat([p.detach().flatten() for p in ft.denoiser.parameters()])

    assert torch.equal(weights(0, 1), weights(0, 2))
