"""Presets: every shipped preset validates; typos name the key and the closest valid one."""

import pytest

from graphdiff.config import list_presets, load_preset, parse_override
from graphdiff.errors import ConfigError

REQUIRED = {"gdss-community_small", "gdss-grid", "gdss-ego_small", "gdss-enzymes", "gdss-qm9", "gdss-zinc250k",
            "defog-qm9", "defog-planar", "defog-sbm", "defog-tree", "defog-community_small", "defog-moses",
            "defog-zinc250k", "digress-qm9", "digress-planar", "digress-sbm"}


def test_all_presets_ship_and_validate():
    names = set(list_presets())
    assert REQUIRED <= names
    for name in names:
        cfg = load_preset(name)
        assert cfg["name"] == name and cfg["process"]["name"] == name.split("-")[0]


def write(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


BASE = """dataset: synth_community_small
process: {name: gdss, node_features: degree, max_feat_num: 5}
model: {name: gdss, x_net: {type: gcn}, adj_net: {num_layers: 2}}
"""


@pytest.mark.parametrize("extra,match", [
    ("train: {lrr: 0.1}\n", r"train: unknown .*'lrr'; did you mean 'lr'\?"),
    ("sample: {snrr: 0.1}\n", r"sample: unknown key 'snrr'; did you mean 'snr'\?"),
    ("sample: {sampler: pcc}\n", r"sample: sampler 'pcc' is unknown; did you mean 'pc'\?"),
    ("trian: {lr: 0.1}\n", r"unknown key 'trian'; did you mean 'train'\?"),
    ("evaluate: {protocl: gdss}\n", r"did you mean 'protocol'\?"),
    ("train: {batch_size: 0}\n", r"batch_size"),
])
def test_typos_name_the_key_and_the_closest(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_preset(write(tmp_path, BASE + extra))
    assert "p.yaml" in str(err.value) and "\n" not in str(err.value)


def test_process_and_model_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"process: unknown key 'node_feature'; did you mean 'node_features'\?"):
        load_preset(write(tmp_path, BASE.replace("node_features", "node_feature")))
    with pytest.raises(ConfigError, match=r"model: unknown key 'x_nett'; did you mean 'x_net'\?"):
        load_preset(write(tmp_path, BASE.replace("x_net", "x_nett")))
    with pytest.raises(ConfigError, match="unknown process 'gdsss'"):
        load_preset(write(tmp_path, BASE.replace("name: gdss,", "name: gdsss,")))


def test_bad_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml line \d+: invalid YAML"):
        load_preset(write(tmp_path, "dataset: x\nprocess: {name: gdss\n"))


def test_unknown_preset_suggests(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'gdss-qm9'"):
        load_preset("gdss-qm8")


def test_overrides_merge_and_are_checked(tmp_path):
    cfg = load_preset(write(tmp_path, BASE), parse_override("train.lr=0.002"))
    assert cfg.train.lr == 0.002
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        load_preset(write(tmp_path, BASE), parse_override("train.lrr=0.002"))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.lr")


def test_exponent_numbers_are_floats_everywhere(tmp_path):
    # YAML 1.1 (PyYAML's default) reads "1e-4" as a string; --set and preset files read it as the number.
    assert parse_override("finetune.lr=1e-4") == {"finetune": {"lr": 1e-4}}
    assert parse_override("sample.omega=5E-2")["sample"]["omega"] == 0.05
    assert parse_override("sample.eta=.5e1")["sample"]["eta"] == 5.0
    assert parse_override("x.name=e5")["x"]["name"] == "e5" and parse_override("x.v=1e")["x"]["v"] == "1e"
    cfg = load_preset(write(tmp_path, BASE + "finetune: {lr: 3e-5}\n"), parse_override("sample.snr=2e-1"))
    assert cfg.finetune.lr == 3e-5 and cfg["sample"]["snr"] == 0.2


def test_extends_merges_on_top_of_another_preset(tmp_path):
    base = write(tmp_path, BASE + "train: {lr: 0.01, batch_size: 8}\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {base}\ntrain: {{lr: 0.002}}\n")
    cfg = load_preset(child)
    assert (cfg.train.lr, cfg.train.batch_size) == (0.002, 8) and cfg.dataset == "synth_community_small"
    assert cfg["train"]["lr"] == 0.002  # sections read like the mapping config.json holds
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_preset(loop)


def test_series_presets_diffuse_seasonal_differences_and_the_pool_keeps_mean_scaling():
    from graphdiff.data import load_dataset

    for name, scaling in [("edm-tsdiff-wineind", "sdiff"), ("edm-tsdiff_cnn-taylor", "sdiff"),
                          ("edm-tsdiff-monthly", "mean"), ("edm-tsdiff_cnn-monthly", "mean")]:
        cfg = load_preset(name)
        assert cfg.dataset_options["scaling"] == scaling, name
    ds = load_dataset("wineind", **load_preset("edm-tsdiff-wineind").dataset_options)
    assert ds.info["scaling"] == "sdiff" and ds.schema.extra["fixed_graph"]["scaling"] == "sdiff"


def test_a_preset_can_be_named_without_its_process_when_that_leaves_one(tmp_path, monkeypatch):
    import graphdiff.config as config

    cfg = load_preset("tsdiff-airpassengers")
    assert cfg.name == "edm-tsdiff-airpassengers" and cfg.process["name"] == "edm"
    assert load_preset("e3nn-qm9_3d").name == "eqgat_diff-e3nn-qm9_3d"
    with pytest.raises(ConfigError, match="unknown preset 'tsdiff-airpasengers'; did you mean"):
        load_preset("tsdiff-airpasengers")
    # a bare dataset name is not a short preset name (digits: edm-, pfgm- and score_sde-digits)
    with pytest.raises(ConfigError, match="unknown preset 'digits'"):
        load_preset("digits")
    # two processes with the same short name: refused with both
    for proc in ("edm", "pfgm"):
        (tmp_path / f"{proc}-tsdiff-x.yaml").write_text(f"extends: {config.PRESET_DIR / 'edm-digits.yaml'}\n")
    monkeypatch.setattr(config, "PRESET_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"preset 'tsdiff-x' is ambiguous: name the process too \(edm-tsdiff-x, "
                                          r"pfgm-tsdiff-x\)"):
        load_preset("tsdiff-x")
    assert load_preset("edm-tsdiff-x").name == "edm-tsdiff-x"
