"""Checkpoint folders: round trip, atomic replacement, recovery of an interrupted swap, one-line errors."""

from __future__ import annotations

import json
import os

import pytest
import safetensors.torch
import torch
from torch import nn

from graphdiff.errors import CheckpointError, GraphdiffError
from graphdiff.train import load_checkpoint, load_weights, read_config, resolve_checkpoint, save_checkpoint


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5), nn.Linear(5, 2))


def _save(folder, seed: int, step: int, *, ema=True, state=True):
    model = _model(seed)
    save_checkpoint(
        folder, config={"process": {"name": "toy"}, "step": step, "epoch": 0}, model=model,
        ema=_model(seed + 100) if ema else None,
        training_state={"step": step, "rng": [{"cpu": torch.get_rng_state()}], "lr": 0.1, "name": "x",
                        "pair": (1, 2), "nested": {"t": torch.arange(3)}} if state else None,
    )
    return model


def _one_line_error(fn, *needles) -> str:
    with pytest.raises(CheckpointError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, GraphdiffError)
    for n in needles:
        assert str(n) in msg, msg
    return msg


def test_round_trip(tmp_path):
    folder = tmp_path / "run" / "checkpoint"
    model = _save(folder, seed=1, step=7)
    assert sorted(os.listdir(folder)) == ["config.json", "ema.safetensors", "model.safetensors", "training_state.pt"]
    ckpt = load_checkpoint(tmp_path / "run", training_state=True)  # the run folder works as well
    assert ckpt.path == folder and ckpt.step == 7
    assert ckpt.config["process"] == {"name": "toy"} and ckpt.config["format"] == 1
    assert ckpt.config["graphdiff_version"] and ckpt.config["checkpoint_files"][0] == "model.safetensors"
    fresh = _model(2)
    load_weights(fresh, ckpt.model_state, "model")
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(ckpt.ema_state["0.weight"], _model(101)[0].weight)
    assert ckpt.training_state["pair"] == (1, 2) and torch.equal(ckpt.training_state["nested"]["t"], torch.arange(3))
    assert load_checkpoint(folder).training_state is None


def test_a_failing_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoint"
    old_model = _save(folder, seed=1, step=1)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        _save(folder, seed=2, step=2)
    ckpt = load_checkpoint(folder)
    assert ckpt.step == 1
    assert torch.equal(ckpt.model_state["0.weight"], old_model[0].weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # no temporary folder left behind


def test_a_failing_safetensors_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoint"
    _save(folder, seed=1, step=1)
    real = safetensors.torch.save_file
    calls = []

    def half(tensors, filename, metadata=None):
        calls.append(filename)
        real(tensors, filename, metadata=metadata)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted mid-checkpoint
    monkeypatch.setattr(safetensors.torch, "save_file", half)
    with pytest.raises(KeyboardInterrupt):
        _save(folder, seed=2, step=2)
    assert load_checkpoint(folder).step == 1


def test_leftover_temporary_folder_is_ignored_and_cleaned(tmp_path):
    folder = tmp_path / "checkpoint"
    _save(folder, seed=1, step=1)
    tmp = tmp_path / ".checkpoint.tmp"
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"partial")
    assert load_checkpoint(tmp_path).step == 1
    _save(folder, seed=2, step=2)
    assert not tmp.exists() and load_checkpoint(tmp_path).step == 2


def test_interrupted_swap_is_recovered_from_old(tmp_path):
    folder = tmp_path / "checkpoint"
    _save(folder, seed=1, step=3)
    # killed between the two renames: only ".checkpoint.old" holds the checkpoint
    os.replace(folder, tmp_path / ".checkpoint.old")
    assert resolve_checkpoint(tmp_path) == folder
    assert not (tmp_path / ".checkpoint.old").exists()
    assert load_checkpoint(folder).step == 3
    # the same through the checkpoint folder's own path, and through save_checkpoint
    os.replace(folder, tmp_path / ".checkpoint.old")
    assert load_checkpoint(folder).step == 3
    os.replace(folder, tmp_path / ".checkpoint.old")
    _save(folder, seed=1, step=4)
    assert load_checkpoint(folder).step == 4 and not (tmp_path / ".checkpoint.old").exists()


def test_interrupted_cleanup_keeps_the_new_checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    _save(tmp_path / "scratch", seed=1, step=1)
    os.replace(tmp_path / "scratch", tmp_path / ".checkpoint.old")
    _save(tmp_path / "scratch", seed=1, step=2)
    os.replace(tmp_path / "scratch", folder)  # killed after the swap, before the old one was removed
    assert load_checkpoint(tmp_path).step == 2
    assert not (tmp_path / ".checkpoint.old").exists()


def test_no_checkpoint(tmp_path):
    _one_line_error(lambda: resolve_checkpoint(tmp_path), str(tmp_path), "holds no checkpoint (no config.json)")
    _one_line_error(lambda: load_checkpoint(tmp_path / "missing"), "holds no checkpoint")


def test_truncated_model_file(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    f = tmp_path / "checkpoint" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _one_line_error(lambda: load_checkpoint(tmp_path), f, "unreadable or corrupted safetensors file")


def test_garbage_ema_file(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    (tmp_path / "checkpoint" / "ema.safetensors").write_bytes(b"\x00" * 5)
    _one_line_error(lambda: load_checkpoint(tmp_path), "ema.safetensors", "corrupted")


def test_missing_ema_file(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    (tmp_path / "checkpoint" / "ema.safetensors").unlink()
    _one_line_error(lambda: load_checkpoint(tmp_path), tmp_path / "checkpoint", "missing ema.safetensors")


def test_missing_model_file(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1, ema=False)
    (tmp_path / "checkpoint" / "model.safetensors").unlink()
    _one_line_error(lambda: load_checkpoint(tmp_path), "missing model.safetensors")


def test_no_ema_is_fine(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1, ema=False, state=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.ema_state is None
    _one_line_error(lambda: load_checkpoint(tmp_path, training_state=True), "missing training_state.pt")


def test_bad_json(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    (tmp_path / "checkpoint" / "config.json").write_text('{"step": 1,')
    _one_line_error(lambda: load_checkpoint(tmp_path), tmp_path / "checkpoint" / "config.json", "invalid JSON",
                    "line 1")


def test_missing_required_keys(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    f = tmp_path / "checkpoint" / "config.json"
    cfg = json.loads(f.read_text())
    del cfg["step"], cfg["format"]
    f.write_text(json.dumps(cfg))
    _one_line_error(lambda: read_config(f.parent), "config.json", "missing required key(s) 'format', 'step'")
    cfg.update(format=99, step=1)
    f.write_text(json.dumps(cfg))
    _one_line_error(lambda: load_checkpoint(tmp_path), "config.json", "format 99")


def test_corrupted_training_state(tmp_path):
    _save(tmp_path / "checkpoint", seed=1, step=1)
    f = tmp_path / "checkpoint" / "training_state.pt"
    f.write_bytes(f.read_bytes()[:100])
    _one_line_error(lambda: load_checkpoint(tmp_path, training_state=True), f, "corrupted training state")


class _Opaque:
    pass


def test_training_state_is_loaded_weights_only(tmp_path):
    save_checkpoint(tmp_path / "checkpoint", config={}, model=_model(1), training_state={"evil": _Opaque()})
    _one_line_error(lambda: load_checkpoint(tmp_path, training_state=True), "training_state.pt")


def test_unserialisable_config(tmp_path):
    _one_line_error(lambda: save_checkpoint(tmp_path / "c", config={"f": object()}, model=_model(1)),
                    "not JSON-serialisable")
    assert not (tmp_path / "c").exists()


def test_load_weights_names_the_first_bad_key():
    sd = _model(1).state_dict()
    wide = nn.Sequential(nn.Linear(3, 6), nn.LayerNorm(6), nn.Linear(6, 2))
    _one_line_error(lambda: load_weights(wide, sd, "ckpt/model.safetensors"), "ckpt/model.safetensors",
                    "'0.weight' has shape (5, 3) in the checkpoint but (6, 3) in the model")
    missing = dict(sd)
    del missing["1.bias"]
    _one_line_error(lambda: load_weights(_model(2), missing, "m"), "key '1.bias'", "missing")
    extra = {**sd, "9.weight": torch.zeros(2)}
    _one_line_error(lambda: load_weights(_model(2), extra, "m"), "unexpected key '9.weight'")
    target = _model(2)
    load_weights(target, {f"module.{k}": v for k, v in sd.items()}, "m")  # saved from a DDP-wrapped model
    assert torch.equal(target[0].weight, sd["0.weight"])


def test_tied_weights_can_be_saved(tmp_path):
    model = _model(1)
    model[2].weight = nn.Parameter(torch.randn(2, 5))
    tied = nn.ModuleDict({"a": model[2], "b": model[2]})
    save_checkpoint(tmp_path / "c", config={}, model=tied)
    fresh = nn.ModuleDict({"a": nn.Linear(5, 2)})
    fresh["b"] = fresh["a"]
    load_weights(fresh, load_checkpoint(tmp_path / "c").model_state, "m")
    assert torch.equal(fresh["a"].weight, model[2].weight)


def test_saving_never_deletes_a_users_files(tmp_path):
    user = tmp_path / "notes"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("important")
    (user / "sub" / "data.csv").write_text("x")
    _one_line_error(lambda: _save(user, seed=1, step=1), str(user), "holds no checkpoint", "notes.txt")
    assert (user / "notes.txt").read_text() == "important" and (user / "sub" / "data.csv").read_text() == "x"
    afile = tmp_path / "afile"
    afile.write_text("keep")
    _one_line_error(lambda: _save(afile, seed=1, step=1), "not a folder")
    _one_line_error(lambda: _save(afile / "ckpt", seed=1, step=1), "is a file")
    assert afile.read_text() == "keep" and sorted(os.listdir(tmp_path)) == ["afile", "notes"]
    (tmp_path / "empty").mkdir()
    _save(tmp_path / "empty", seed=1, step=1)  # an empty folder is fine
    assert load_checkpoint(tmp_path / "empty").step == 1
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".gitkeep").write_text("")
    _save(tmp_path / "hidden", seed=1, step=3)  # so is one of hidden files only, which stay
    assert (tmp_path / "hidden" / ".gitkeep").exists() and load_checkpoint(tmp_path / "hidden").step == 3


def test_replacing_a_checkpoint_keeps_its_other_files(tmp_path):
    folder = tmp_path / "model"
    _save(folder, seed=1, step=1, state=False)
    (folder / "README.md").write_text("# card")
    (folder / "figures").mkdir()
    (folder / "figures" / "a.png").write_bytes(b"png")
    _save(folder, seed=2, step=2, ema=False, state=False)
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "figures", "model.safetensors"]
    assert (folder / "README.md").read_text() == "# card" and (folder / "figures" / "a.png").read_bytes() == b"png"
    ckpt = load_checkpoint(folder)
    assert ckpt.step == 2 and ckpt.ema_state is None  # the old ema.safetensors is not carried over


def test_a_training_checkpoint_is_replaced_by_training_checkpoints_only(tmp_path):
    run = tmp_path / "checkpoint"
    _save(run, seed=1, step=1)  # what a trainer writes: with training_state.pt
    before = {f: (run / f).read_bytes() for f in os.listdir(run)}
    with pytest.raises(CheckpointError, match="holds a training run's checkpoint .* could not be resumed"):
        _save(run, seed=2, step=0, ema=False, state=False)  # a model saved over it (pack, import, save_pretrained)
    assert {f: (run / f).read_bytes() for f in os.listdir(run)} == before
    _save(run, seed=3, step=2)  # the trainer's next checkpoint replaces it
    assert load_checkpoint(run, training_state=True).step == 2


def test_weight_files_get_the_same_permissions_as_the_config(tmp_path):
    old = os.umask(0o022)
    try:
        _save(tmp_path / "c", seed=1, step=1)
    finally:
        os.umask(old)
    modes = {f: (tmp_path / "c" / f).stat().st_mode & 0o777 for f in ("config.json", "model.safetensors",
                                                                     "ema.safetensors")}
    assert set(modes.values()) == {0o644}, modes
