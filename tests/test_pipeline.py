"""GraphDiffusionPipeline: fit, save/load, sample in every output form, and its one-line errors."""

import json
import shutil

import networkx as nx
import numpy as np
import pytest
import torch
from rdkit import Chem

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import CheckpointError, ConfigError, GraphdiffError
from graphdiff.state import GraphState

TINY = {"model": {"x_net": {"type": "gcn", "depth": 1, "nhid": 8},
                  "adj_net": {"nhid": 8, "num_layers": 2, "adim": 8, "c_hid": 4, "c_final": 2}},
        "train": {"max_steps": 12, "ckpt_every": 6, "batch_size": 16, "log_every": 2, "val_every": 1},
        "sample": {"steps": 8}, "evaluate": {"steps": 2, "num_samples": 4}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    out = tmp_path_factory.mktemp("run")
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset="gdss-demo", out=out, root=root,
                                      overrides=TINY, progress=False)
    return pipe, out


def test_fit_writes_a_checkpoint_and_log(trained):
    pipe, out = trained
    assert pipe.summary["steps"] == 12 and pipe.summary["stopped_by"] == "max_steps"
    ck = out / "checkpoint"
    for f in ("config.json", "model.safetensors", "ema.safetensors", "training_state.pt"):
        assert (ck / f).is_file(), f
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["process"]["name"] == "gdss" and cfg["step"] == 12
    assert cfg["process"]["max_feat_num"] >= 2  # "auto" resolved from the data
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert len(lines) >= 6
    vals = [x["val"] for x in lines if "val" in x]  # validation every epoch (5 steps of 16 graphs)
    assert len(vals) == 2 and all(0 <= v["mmd_degree"] and v["samples"] == 4 for v in vals)


def test_sample_outputs_and_determinism(trained):
    pipe, out = trained
    st = pipe.sample(6, seed=3, progress=False)
    assert isinstance(st, GraphState) and len(st) == 6 and st.e.shape[-1] == 2
    assert torch.equal(st.e, st.e.transpose(1, 2))
    graphs = pipe.sample(6, seed=3, output="networkx", progress=False)
    assert all(isinstance(g, nx.Graph) for g in graphs)
    assert [g.number_of_nodes() for g in graphs] == st.n_nodes.tolist()
    again = pipe.sample(6, seed=3, output="networkx", progress=False, batch_size=4)  # other batching, same graphs
    assert [sorted(g.edges()) for g in pipe(6, seed=3, output="networkx", progress=False)] == [
        sorted(g.edges()) for g in graphs]  # called like a diffusers pipeline
    assert [sorted(g.edges()) for g in again] == [sorted(g.edges()) for g in graphs]
    other = pipe.sample(6, seed=4, output="networkx", progress=False)
    assert [sorted(g.edges()) for g in other] != [sorted(g.edges()) for g in graphs]
    batch = pipe.sample(3, seed=0, output="pyg", progress=False)
    assert batch.num_graphs == 3
    fixed = pipe.sample(3, n_nodes=7, output="networkx", progress=False)
    assert [g.number_of_nodes() for g in fixed] == [7, 7, 7]
    steps = []
    pipe.sample(2, steps=5, sampler="em", callback=lambda i, t, s: steps.append((i, t)), progress=False)
    assert [i for i, _ in steps] == [0, 1, 2, 3, 4] and steps[-1][1] < steps[0][1]
    for name in ("em", "pc", "s4", "ode"):
        assert len(pipe.sample(2, steps=3, sampler=name, output="networkx", progress=False)) == 2


def test_save_and_load_pretrained_give_the_same_samples(trained, tmp_path):
    pipe, out = trained
    pipe.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "m")
    a = pipe.sample(4, seed=1, progress=False)
    b = loaded.sample(4, seed=1, progress=False)
    assert torch.equal(a.e, b.e)
    run = GraphDiffusionPipeline.from_pretrained(out)  # a run folder works too
    assert run.config["process"]["name"] == "gdss"


@pytest.mark.parametrize("kw,match", [
    ({"n": 0}, "positive integer"), ({"n": 2, "steps": -1}, "steps must"),
    ({"n": 2, "steps": 0}, "steps must"), ({"n": 2, "sampler": "pcc"}, "did you mean 'pc'"),
    ({"n": 2, "snrr": 0.1}, "did you mean 'snr'"), ({"n": 2, "output": "smiles"}, "molecule model"),
    ({"n": 2, "output": "svg"}, "output must be one of"), ({"n": 2, "n_nodes": 99}, "max nodes"),
    ({"n": 2, "seed": "a"}, "seed must be an integer"), ({"n": 2, "seed": 1.5}, "seed must be an integer"),
    ({"n": 2, "batch_size": 0}, "batch_size must be a positive"), ({"n": 2, "batch_size": 2.5}, "batch_size must"),
    ({"n": 2, "n_nodes": 3.5}, "n_nodes must be an integer"), ({"n": 2, "n_nodes": "5"}, "n_nodes must be"),
    ({"n": 2, "n_nodes": torch.tensor([3.0, 4.0])}, "n_nodes must hold integers"),
    ({"n": 2, "snr": "x"}, "snr must be a number"), ({"n": 2, "cond": [0.5]}, "takes no conditions"),
    ({"n": 2, "reward": "qed"}, "name one with guide="),
    ({"n": 2, "guide": "best_of_n", "reward": "qed", "output": "smile"}, "output must be one of"),
])
def test_sample_bad_input(trained, kw, match):
    pipe, _ = trained
    n = kw.pop("n")
    with pytest.raises(ConfigError, match=match):
        pipe.sample(n, progress=False, **kw)


def test_conditions_on_an_unconditional_discrete_model_are_one_line_errors():
    pipe = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    with pytest.raises(ConfigError, match="trained without graph conditions"):
        pipe.sample(2, cond=[0.5], progress=False)
    with pytest.raises(ConfigError, match="eta must be a number"):
        pipe.sample(2, eta="x", progress=False)


def test_node_counts_as_integer_arrays(trained):
    pipe, _ = trained
    want = pipe.sample(2, steps=2, n_nodes=[3, 5], progress=False, seed=1)
    for sizes in (torch.tensor([3, 5]), np.array([3, 5]), (k for k in (3, 5)), [np.int64(3), torch.tensor(5)]):
        got = pipe.sample(2, steps=2, n_nodes=sizes, progress=False, seed=1)
        assert torch.equal(got.mask.sum(1), torch.tensor([3, 5])) and torch.equal(got.e, want.e)
    assert pipe.to(None) is pipe and pipe.to(torch.float32) is pipe  # nn.Module.to's other arguments pass
    with pytest.raises(ConfigError, match="not a torch device"):
        pipe.to("gpu0")


def test_broken_checkpoints_are_one_line_errors(trained, tmp_path):
    _, out = trained
    good = out / "checkpoint"
    cases = {}
    for name in ("missing", "corrupt", "badjson", "otherprocess"):
        d = tmp_path / name
        shutil.copytree(good, d)
        cases[name] = d
    (cases["missing"] / "model.safetensors").unlink()
    (cases["missing"] / "ema.safetensors").unlink()
    data = (cases["corrupt"] / "ema.safetensors").read_bytes()
    (cases["corrupt"] / "ema.safetensors").write_bytes(data[: len(data) // 2])
    (cases["badjson"] / "config.json").write_text("{not json")
    cfg = json.loads((cases["otherprocess"] / "config.json").read_text())
    cfg["process"]["name"] = "ghost"
    (cases["otherprocess"] / "config.json").write_text(json.dumps(cfg))
    expect = {"missing": "model.safetensors", "corrupt": "ema.safetensors", "badjson": "config.json",
              "otherprocess": "unknown process 'ghost'"}
    for name, d in cases.items():
        with pytest.raises(GraphdiffError, match=expect[name]) as err:
            GraphDiffusionPipeline.from_pretrained(d)
        assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError):
        GraphDiffusionPipeline.from_pretrained(tmp_path / "nowhere")


def test_molecule_pipeline_end_to_end(tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text("\n".join(["CCO", "CC(=O)O", "c1ccccc1", "CCN", "OCCO", "CC#N", "C1CC1", "CC(C)O"] * 4))
    pipe = GraphDiffusionPipeline.fit(str(smi), preset="gdss-qm9", out=tmp_path / "run", root=tmp_path / "d",
                                      overrides={**TINY, "train": {**TINY["train"], "batch_size": 8}},
                                      progress=False)
    smiles = pipe.sample(5, output="smiles", progress=False)
    mols = pipe.sample(5, output="rdkit", progress=False)
    assert len(smiles) == 5 and len(mols) == 5
    for s, m in zip(smiles, mols):
        assert (s is None) == (m is None)
        if s is not None:
            assert Chem.MolFromSmiles(s) is not None


def test_resuming_a_run_with_another_process_is_refused(trained, tmp_path):
    _, out = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    with pytest.raises(CheckpointError, match="gdss.*defog|defog.*gdss") as err:
        GraphDiffusionPipeline.fit("synth_community_small", preset="defog-community_small", out=run,
                                   root=tmp_path / "d", resume=True, progress=False,
                                   overrides={"model": {"n_layers": 1, "hidden_x": 8, "hidden_e": 4, "hidden_y": 4,
                                                        "n_heads": 2}})
    assert "\n" not in str(err.value)


def test_subnormal_weights_are_flushed_on_load_without_changing_samples(tmp_path):
    """Weights below float32's smallest normal (as in the GDSS authors' QM9 checkpoint) are set to zero by
    ``from_pretrained``: the samples are those of the unflushed weights, and a resumed run is not touched."""
    import shutil
    from pathlib import Path

    import safetensors.torch

    from graphdiff.train.checkpoint import flush_subnormal_

    legacy = Path(__file__).parent / "fixtures" / "legacy_v1" / "gdss"
    folder = tmp_path / "m"
    shutil.copytree(legacy, folder)
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    name = max((k for k, v in weights.items() if v.dim() == 2), key=lambda k: weights[k].numel())
    w = weights[name].clone()
    w.view(-1)[::3] = torch.tensor(3e-40).expand_as(w.view(-1)[::3])  # a third of a matrix subnormal
    weights[name] = w
    safetensors.torch.save_file(weights, folder / "model.safetensors")
    n_sub = int(((w != 0) & (w.abs() < torch.finfo(w.dtype).tiny)).sum())
    assert n_sub > 0

    pipe = GraphDiffusionPipeline.from_pretrained(folder)
    assert pipe.flushed_subnormal == n_sub
    got = dict(pipe.denoiser.state_dict())[name]
    assert int((got == 0).sum()) >= n_sub and torch.equal(got[w.abs() >= 1e-30], w[w.abs() >= 1e-30])
    flushed = pipe.sample(5, steps=4, seed=1, progress=False)
    pipe.denoiser.load_state_dict(weights)  # the subnormal weights back in place
    back = dict(pipe.denoiser.state_dict())[name]
    assert int(((back != 0) & (back.abs() < 1e-38)).sum()) == n_sub
    raw = pipe.sample(5, steps=4, seed=1, progress=False)
    assert torch.equal(flushed.x, raw.x) and torch.equal(flushed.e, raw.e)
    assert flush_subnormal_(pipe.denoiser) == n_sub and flush_subnormal_(pipe.denoiser) == 0


def test_a_fitted_pipeline_trains_again_and_resume_with_overwrite_is_refused(trained, tmp_path):
    pipe, out = trained
    again = pipe.fit(out=tmp_path / "again", train={"max_steps": 2, "val_every": 0}, progress=False)
    assert again.summary["steps"] == 2  # the EMA copy it samples with had no gradients: trained all the same
    with pytest.raises(ConfigError, match="give one"):
        GraphDiffusionPipeline.fit("synth_community_small", preset="gdss-demo", out=tmp_path / "x", resume=True,
                                   overwrite=True, progress=False)
    assert not (tmp_path / "x").exists()


def test_initial_weights_follow_train_seed_and_leave_the_global_rng_alone(tmp_path):
    def weights(seed, noise):
        torch.manual_seed(noise)  # whatever ran before in the process
        torch.rand(noise + 1)
        state = torch.get_rng_state()
        pipe = GraphDiffusionPipeline.from_preset("gdss-demo", "synth_community_small", root=tmp_path,
                                                  overrides={**TINY, "train": {**TINY["train"], "seed": seed}})
        assert torch.equal(torch.get_rng_state(), state)
        return torch.cat([p.detach().flatten() for p in pipe.denoiser.parameters()])

    first = weights(0, 1)
    assert torch.equal(first, weights(0, 7))
    assert not torch.equal(first, weights(1, 1))
