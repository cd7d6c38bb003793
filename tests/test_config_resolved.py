"""The resolved run config: read once, stored once in config.json, old checkpoints still load, one name per knob."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from graphdiff.config import CONFIG_VERSION, RunConfig, load_preset
from graphdiff.errors import ConfigError
from graphdiff.pipeline import GraphDiffusionPipeline, shard_range

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v1"
TINY = {"model": {"x_net": {"type": "gcn", "depth": 1, "nhid": 8},
                  "adj_net": {"nhid": 8, "num_layers": 2, "adim": 8, "c_hid": 4, "c_final": 2}},
        "train": {"max_steps": 2, "ckpt_every": 0, "batch_size": 8, "log_every": 1},
        "sample": {"steps": 4, "seed": 7, "num_samples": 5}}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")  # synth_community_small is generated there (no network)


def _edges(graphs):
    return [sorted(map(list, g.edges())) for g in graphs]


def test_checkpoints_of_the_previous_format_load_and_sample_the_same():
    gdss = GraphDiffusionPipeline.from_pretrained(LEGACY / "gdss")
    expect = json.loads((LEGACY / "gdss" / "expected_samples.json").read_text())
    assert _edges(gdss.sample(4, seed=0, output="networkx", progress=False)) == expect
    assert gdss.config.sample.steps == 5 and gdss.config.train.batch_size == 8  # from the raw preset copy
    assert gdss.config.name == "gdss-demo" and gdss.config.evaluate.protocol == "gdss"
    defog = GraphDiffusionPipeline.from_pretrained(LEGACY / "defog")
    assert defog.sample(4, seed=0, output="smiles", progress=False) == json.loads(
        (LEGACY / "defog" / "expected_samples.json").read_text())
    run = GraphDiffusionPipeline.from_pretrained(LEGACY / "gdss_run_checkpoint")
    assert run.trained_steps == 3


def test_a_run_of_the_previous_format_resumes(tmp_path, data_root):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "gdss_run_checkpoint", run / "checkpoint")
    pipe = GraphDiffusionPipeline.from_pretrained(run)
    pipe.fit("synth_community_small", out=run, root=data_root, resume=True, progress=False,
             train={"max_steps": 5})
    assert pipe.summary["steps"] == 5
    saved = json.loads((run / "checkpoint" / "config.json").read_text())
    assert saved["config_version"] == CONFIG_VERSION and "preset" not in saved


def test_config_json_holds_the_resolved_config_once(tmp_path, data_root):
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset="gdss-demo", out=tmp_path / "run",
                                      root=data_root, overrides=TINY, progress=False)
    saved = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    sections = {"config_version", "name", "description", "dataset", "dataset_options", "process", "model", "train",
                "sample", "evaluate", "schema"}
    assert sections <= set(saved) and "preset" not in saved
    assert saved["process"]["max_feat_num"] != "auto" and saved["model"]["x_dim"] >= 1  # resolved on the data
    assert saved["train"]["max_steps"] == 2 and saved["train"]["lr"] == 0.005  # every option, as used
    back = RunConfig.from_dict(saved)
    assert back.to_dict() == pipe.config.to_dict()
    # the config's seed and sample count are read: no seed given = sample.seed
    assert _edges(pipe.sample(3, output="networkx", progress=False)) == _edges(
        pipe.sample(3, seed=7, output="networkx", progress=False))
    assert _edges(pipe.sample(3, output="networkx", progress=False)) != _edges(
        pipe.sample(3, seed=8, output="networkx", progress=False))


def test_old_spellings_warn_and_still_work(tmp_path):
    with pytest.warns(DeprecationWarning, match="use 'sample.steps'"):
        cfg = load_preset("gdss-demo", {"sample": {"num_steps": 12}})
    assert cfg.sample.steps == 12
    with pytest.warns(DeprecationWarning, match="train.val_every"):
        cfg = load_preset("gdss-demo", {"evaluate": {"every_epochs": 3}})
    assert cfg.train.val_every == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_preset("gdss-demo", {"sample": {"steps": 12}})  # the one name warns of nothing


def test_num_steps_keyword_is_deprecated_and_gives_the_same_samples():
    pipe = GraphDiffusionPipeline.from_pretrained(LEGACY / "gdss")
    new = pipe.sample(2, steps=3, seed=1, progress=False)
    with pytest.warns(DeprecationWarning, match="steps="):
        old = pipe.sample(2, num_steps=3, seed=1, progress=False)
    assert torch.equal(new.e, old.e)


@pytest.mark.parametrize("section,value,match", [
    ("sample", {"seed": -1}, "seed must be an integer >= 0"),
    ("sample", {"num_samples": 0}, "num_samples must be an integer >= 1"),
    ("evaluate", {"protocol": "spectr"}, "did you mean 'spectre'"),
    ("evaluate", {"reference": "tset"}, "did you mean 'test'"),
    ("evaluate", {"num_sample": 2}, "did you mean 'num_samples'"),
])
def test_every_section_is_checked_in_one_place(section, value, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_preset("gdss-demo", {section: value})
    assert "gdss-demo.yaml" in str(err.value) and "\n" not in str(err.value)


def test_shard_ranges_cover_the_samples_in_order():
    for n, k in [(10, 3), (7, 7), (100, 8), (5, 1)]:
        ranges = [shard_range(n, i, k) for i in range(k)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert max(h - lo for lo, h in ranges) - min(h - lo for lo, h in ranges) <= 1
    with pytest.raises(ConfigError, match="shard index"):
        shard_range(10, 3, 3)
    with pytest.raises(ConfigError, match="cannot be split"):
        shard_range(2, 0, 3)


def test_shards_concatenate_to_the_unsharded_run():
    pipe = GraphDiffusionPipeline.from_pretrained(LEGACY / "gdss")
    whole = _edges(pipe.sample(7, seed=3, steps=3, output="networkx", progress=False, batch_size=2))
    parts = []
    for i in range(3):
        parts += _edges(pipe.sample(7, seed=3, steps=3, output="networkx", progress=False, shard=(i, 3)))
    assert parts == whole


def test_configs_before_version_3_build_the_old_gdss_networks():
    old = json.loads((LEGACY / "gdss" / "config.json").read_text())  # format 1, no variant
    assert RunConfig.from_dict(old).model["adj_net"]["variant"] == "graphdiff-v1"
    v2 = {**load_preset("gdss-demo").to_dict(), "config_version": 2}
    v2["model"] = {**v2["model"], "x_net": {"type": "gmh", "nhid": 8}}
    up = RunConfig.from_dict(v2).model
    assert up["adj_net"]["variant"] == "graphdiff-v1" and up["x_net"]["variant"] == "graphdiff-v1"
    new = load_preset("gdss-demo")  # presets (and version-3 configs) without the key: the GDSS networks
    assert "variant" not in new.model["adj_net"]
    assert RunConfig.from_dict(new.to_dict()).model == new.model
    _, den = GraphDiffusionPipeline.build({**new.to_dict(), "schema": old["schema"], "process": old["process"],
                                          "model": {**new.model, "x_dim": 10, "max_nodes": 20}})
    assert den.adj_net.variant == "gdss"
