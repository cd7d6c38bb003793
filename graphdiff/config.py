"""Presets: YAML files under ``graphdiff/presets/`` that say which dataset, process, model, training and
sampling settings a run uses. Every key is checked; an unknown key is an error that names it, the closest valid
key and the file."""

from __future__ import annotations

import copy
import difflib
import inspect
from pathlib import Path

import yaml

from .errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"
SECTIONS = ("description", "dataset", "dataset_options", "process", "model", "train", "sample", "evaluate")
SAMPLE_KEYS = ("sampler", "steps", "num_samples", "batch_size", "seed", "use_ema")
# denoiser arguments a process fills in from the data (``process.denoiser_kwargs()``), never set in a preset
INJECTED = ("x_dim", "max_nodes", "schema", "node_dim", "edge_dim", "cond_dim")
EVALUATE_KEYS = ("protocol", "reference", "every_epochs", "num_samples", "steps")


def _unknown(key: str, valid, where: str) -> ConfigError:
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def check_keys(d: dict, valid, where: str) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    for k in d:
        if k not in valid:
            raise _unknown(k, valid, where)


def check_kwargs(fn_or_cls, d: dict, where: str, skip=()) -> None:
    """Reject keys of ``d`` that ``fn_or_cls`` does not accept as keyword arguments."""
    sig = inspect.signature(fn_or_cls.__init__ if inspect.isclass(fn_or_cls) else fn_or_cls)
    valid = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", *skip)]
    check_keys(d, valid, where)


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str | Path) -> Path:
    """A preset by name (``gdss-qm9``) or a path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"preset file {p} does not exist")
        return p
    f = PRESET_DIR / f"{name}.yaml"
    if not f.is_file():
        close = difflib.get_close_matches(str(name), list_presets(), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown preset {name!r}{hint}; known presets: {', '.join(list_presets())}")
    return f


def _read(path: Path, seen=()) -> dict:
    """A preset's YAML, with ``extends: OTHER`` resolved (OTHER's sections first, this file's merged on top)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of sections")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    base = preset_path(parent)
    if base.resolve() in seen:
        raise ConfigError(f"{path}: 'extends: {parent}' makes a cycle")
    inherited = _read(base, (*seen, path.resolve()))
    # another process, model or sampler replaces the inherited section whole instead of merging into it
    for key, name in (("process", "name"), ("model", "name"), ("sample", "sampler")):
        mine, theirs = raw.get(key), inherited.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict) and mine.get(name, theirs.get(name)) != theirs.get(
                name):
            inherited[key] = {}
    return merge(inherited, raw)


def load_preset(name: str | Path, overrides: dict | None = None) -> dict:
    """Read and check a preset; ``overrides`` (nested dict) are applied on top and checked the same way.

    A preset may start from another with ``extends: NAME``; its own sections are merged on top (mappings key by
    key, anything else replaced; a ``process``, ``model`` or ``sample`` section naming another process, model or
    sampler replaces the inherited one whole)."""
    path = preset_path(name)
    cfg = merge(_read(path, (path.resolve(),)), overrides or {})
    validate(cfg, str(path))
    cfg["name"] = path.stem
    return cfg


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> dict:
    """``train.lr=0.001`` -> ``{"train": {"lr": 0.001}}`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set wants KEY=VALUE (e.g. train.lr=0.001), got {text!r}")
    key, val = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set: empty key in {text!r}")
    try:
        value = yaml.safe_load(val)
    except yaml.YAMLError:
        value = val
    out: dict = {}
    cur = out
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def validate(cfg: dict, where: str) -> None:
    """Check every section of a preset against what the code accepts."""
    from .nn import DENOISERS
    from .processes import process_class
    from .samplers import SAMPLERS
    from .train.config import TrainConfig

    check_keys(cfg, SECTIONS + ("name",), where)
    for need in ("dataset", "process", "model"):
        if need not in cfg:
            raise ConfigError(f"{where}: missing section {need!r}")
    proc = dict(cfg["process"])
    name = proc.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: process.name is missing")
    cls = process_class(name)
    check_kwargs(cls, proc, f"{where}: process", skip=("schema",))
    model = dict(cfg["model"])
    mname = model.pop("name", None)
    if mname not in DENOISERS:
        close = difflib.get_close_matches(str(mname), DENOISERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: model.name {mname!r} is unknown{hint}; known: {sorted(DENOISERS)}")
    check_kwargs(DENOISERS[mname], model, f"{where}: model", skip=INJECTED)
    TrainConfig.from_dict(cfg.get("train", {}), where=f"{where}: train")
    sample_cfg = dict(cfg.get("sample", {}))
    table = SAMPLERS.get(name, {})
    sampler = sample_cfg.get("sampler")
    if sampler is not None and sampler not in table:
        close = difflib.get_close_matches(str(sampler), table, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: sample.sampler {sampler!r} is unknown{hint}; choose from {sorted(table)}")
    knobs = set()
    for fn in table.values():
        knobs |= {p for p in inspect.signature(fn).parameters
                  if p not in ("process", "denoiser", "state", "steps", "noise", "callback", "progress")}
    check_keys(sample_cfg, set(SAMPLE_KEYS) | knobs, f"{where}: sample")
    check_keys(cfg.get("evaluate", {}), EVALUATE_KEYS, f"{where}: evaluate")
    check_keys(cfg.get("dataset_options", {}) or {}, _dataset_options(cfg["dataset"]), f"{where}: dataset_options")


def _dataset_options(dataset: str):
    from .data import dataset_class, is_custom

    if is_custom(dataset):
        from .data.custom import CustomDataset

        cls = CustomDataset
    else:
        try:
            cls = dataset_class(dataset)
        except Exception:  # an unknown name is reported when the dataset is loaded, with suggestions
            return ()
    sig = inspect.signature(cls.__init__)
    return [p for p in sig.parameters if p not in ("self", "path", "root", "split", "args", "kwargs")]
