"""DiGress and DeFoG through the same pipeline, trainer and checkpoints as GDSS; conditions and guidance."""

import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError

TINY_TF = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8,
           "ff_y": 8, "extra_features": ["cycles", "spectral"], "rrwp_steps": 4}


def tiny(preset_sampler_steps, **extra):
    out = {"model": TINY_TF, "train": {"max_steps": 6, "ckpt_every": 3, "batch_size": 16},
           "sample": {"steps": preset_sampler_steps}}
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.mark.parametrize("preset,sampler", [("defog-community_small", "ctmc"),
                                            ("digress-community_small", "ancestral")])
def test_digress_processes_train_save_load_sample(preset, sampler, data_root, tmp_path):
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset=preset, out=tmp_path / "run",
                                      root=data_root, overrides=tiny(8), progress=False)
    assert pipe.summary["steps"] == 6
    assert pipe.config["process"]["name"] == preset.split("-")[0]
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "run")
    for steps in (1, 3, 10):  # the same checkpoint at several step counts, chosen after training
        st = loaded.sample(5, steps=steps, seed=2, progress=False)
        assert st.e.shape[-1] == 2 and torch.equal(st.e, st.e.transpose(1, 2))
        assert torch.equal(st.e.sum(-1)[st.pair_mask()], torch.ones(int(st.pair_mask().sum())))
    a = loaded.sample(4, steps=4, seed=5, output="networkx", progress=False)
    b = loaded.sample(4, steps=4, seed=5, output="networkx", progress=False, batch_size=3)
    assert [sorted(g.edges()) for g in a] == [sorted(g.edges()) for g in b]
    with pytest.raises(ConfigError, match="steps must"):
        loaded.sample(2, steps=0, progress=False)
    with pytest.raises(ConfigError, match="takes no conditions|cond"):
        loaded.sample(2, cond=[1.0], progress=False)


def test_defog_sampling_knobs_are_chosen_after_training(data_root, tmp_path):
    """Steps, time distortion, eta and omega are sampling-time choices: the trained process neither holds nor takes
    them, and each changes what ONE trained denoiser draws from a seed (the same knobs draw the same graphs)."""
    knobs = {"steps", "time_distortion", "eta", "omega"}
    with pytest.raises(ConfigError, match="eta"):  # not a process setting
        GraphDiffusionPipeline.fit("synth_community_small", preset="defog-community_small", out=tmp_path / "bad",
                                   root=data_root, overrides={**tiny(5), "process": {"eta": 1.0}}, progress=False)
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset="defog-community_small", out=tmp_path / "r",
                                      root=data_root, overrides=tiny(5), progress=False)
    assert not knobs & set(pipe.config["process"]) and not knobs & set(pipe.process.to_dict())
    weights = {k: v.clone() for k, v in pipe.denoiser.state_dict().items()}

    def run(model=pipe, **kw):
        return model.sample(4, seed=1, progress=False, **{"steps": 3, **kw})

    base = run()
    assert torch.equal(run().e, base.e)
    drawn = {}
    for name, value in (("time_distortion", "polyinc"), ("eta", 5.0), ("omega", 0.5), ("steps", 2)):
        drawn[name] = run(**{name: value}).e
        assert drawn[name].shape == base.e.shape and not torch.equal(drawn[name], base.e), name
    assert all(torch.equal(v, weights[k]) for k, v in pipe.denoiser.state_dict().items())  # weights untouched
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "r")  # the saved model: the knobs are still free
    assert torch.equal(run(loaded, eta=5.0).e, drawn["eta"])
    with pytest.raises(ConfigError, match="time_distortion|distortion"):
        pipe.sample(2, steps=3, time_distortion="wobbly", progress=False)


def test_conditions_from_a_csv_column_and_classifier_free_guidance(tmp_path):
    rows = ["smiles,has_n"]
    for smi in ["CCO", "CC(=O)O", "c1ccccc1", "OCCO", "CCC", "CC(C)O", "CCN", "CC#N", "NCCO", "c1ccncc1"] * 3:
        rows.append(f"{smi},{int('N' in smi or 'n' in smi)}")
    csv = tmp_path / "mols.csv"
    csv.write_text("\n".join(rows) + "\n")
    over = tiny(4, dataset_options={"condition_columns": ["has_n"]})
    over["train"]["batch_size"] = 8
    pipe = GraphDiffusionPipeline.fit(str(csv), preset="defog-qm9", out=tmp_path / "run", root=tmp_path / "d",
                                      overrides=over, progress=False)
    assert pipe.schema.graph_features == ("has_n",)
    assert pipe.process.denoiser_kwargs()["cond_dim"] == 2  # the value and a "kept" flag for dropout
    smiles = pipe.sample(6, cond=[1.0], guidance=2.0, output="smiles", progress=False)
    assert len(smiles) == 6
    assert pipe.sample(6, cond=1.0, guidance=2.0, output="smiles", progress=False) == smiles  # one column: a number
    per_sample = pipe.sample(2, cond=[[1.0], [0.0]], guidance=0.0, output="smiles", progress=False)
    assert len(per_sample) == 2
    with pytest.raises(ConfigError, match=r"cond must be \[1\] or \[3, 1\]"):
        pipe.sample(3, cond=[1.0, 2.0], progress=False)
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "run")
    assert loaded.schema.graph_features == ("has_n",)


def test_bad_condition_column_is_one_line(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("smiles,p\nCCO,1.5\nCCN,abc\n")
    from graphdiff.data import load_dataset
    from graphdiff.errors import DataError

    with pytest.raises(DataError, match=r"m.csv: line 3: column 'p' must be a finite number, got 'abc'"):
        load_dataset(str(csv), root=tmp_path / "d", condition_columns=["p"])
    with pytest.raises(DataError, match="condition column 'q' not in header"):
        load_dataset(str(csv), root=tmp_path / "d2", condition_columns=["q"])


def test_compiled_sampling_gives_the_same_graphs(tmp_path, capsys):
    """``pipe.compile()`` (``graphdiff sample --compile``): sampling through torch.compile of the denoiser, the
    same samples as the plain module, which stays what is saved."""
    pipe = GraphDiffusionPipeline.fit(
        "synth_community_small", preset="defog-community_small", out=tmp_path / "run", root=tmp_path / "data",
        overrides={"model": {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16,
                             "ff_e": 8, "ff_y": 8, "extra_features": [], "rrwp_steps": 4},
                   "train": {"max_steps": 2, "batch_size": 16, "ckpt_every": 0}}, progress=False)
    plain = pipe.sample(6, steps=3, seed=2, progress=False)
    assert pipe.compile() is pipe and pipe._network is not pipe.denoiser
    capsys.readouterr()
    again = pipe.sample(6, steps=3, seed=2)  # the first compiled call says that its first step compiles
    assert capsys.readouterr().err.count("compiling the denoiser (torch.compile") == 1
    assert torch.equal(plain.mask, again.mask) and torch.equal(plain.e, again.e) and torch.equal(plain.x, again.x)
    assert type(pipe.denoiser).__name__ == "GraphTransformerDenoiser"
    # the weights stay inputs of the compiled graph: a weight changed in place (training) is what it samples with
    with torch.no_grad():
        pipe.denoiser.out_e[-1].bias[1] += 8.0  # edges become far more likely
    changed = pipe.sample(6, steps=3, seed=2)
    assert "compiling the denoiser" not in capsys.readouterr().err  # compiled once
    assert pipe._network is not pipe.denoiser and not torch.equal(changed.e, plain.e)
    pipe._compiled = None
    assert torch.equal(pipe.sample(6, steps=3, seed=2, progress=False).e, changed.e)
