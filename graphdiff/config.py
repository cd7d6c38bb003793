"""One resolved run configuration: a preset is read, merged and validated once into a :class:`RunConfig`.

A preset is a YAML file under ``graphdiff/presets/`` (or any path) with the sections ``dataset``,
``dataset_options``, ``process``, ``model``, ``train``, ``sample`` and ``evaluate``; it may start from another with
``extends: NAME`` and takes ``--set KEY=VALUE`` overrides on top. :func:`load_preset` reads, merges and checks it
once; the trainer, validation sampling, ``sample``, ``save_pretrained`` and ``from_pretrained`` all read the
resulting object, and ``config.json`` stores its :meth:`RunConfig.to_dict` once (``config_version`` 3).

Every key is checked here, with the one "did you mean" helper of :mod:`graphdiff.checks`. The sampling step count
has one name everywhere: ``steps`` (``--steps`` on the command line, ``sample.steps`` in a preset, ``steps=`` in
:meth:`GraphDiffusionPipeline.sample`, the samplers' ``steps``); ``num_steps`` is accepted with a deprecation
warning for one release. The ``sample``, ``evaluate`` and ``finetune`` sections are the dataclasses of
:mod:`graphdiff.config_sections`; ``train`` is :class:`graphdiff.train.config.TrainConfig`.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import yamlio
from .checks import check_keys, check_kwargs, suggest
from .errors import ConfigError
from .config_sections import SAMPLER_ARGS, EvaluateConfig, FinetuneConfig, SampleConfig  # noqa: F401 (re-exported)
from .train.config import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
SECTIONS = ("description", "dataset", "dataset_options", "process", "model", "train", "sample", "evaluate",
            "finetune")
CONFIG_VERSION = 3
# denoiser arguments a process fills in from the data (``process.denoiser_kwargs()``), never set in a preset
INJECTED = ("x_dim", "max_nodes", "schema", "node_dim", "edge_dim", "cond_dim")
# old spelling -> (section, new name), accepted with a DeprecationWarning for one release
DEPRECATED = {("sample", "num_steps"): "steps", ("evaluate", "num_steps"): "steps"}


def _deprecated(old: str, new: str, where: str) -> None:
    warnings.warn(f"{where}: {old!r} is deprecated, use {new!r} (the old spelling goes in the next release)",
                  DeprecationWarning, stacklevel=4)


def _respell(layer: dict, where: str) -> dict:
    """One layer of a preset (a YAML file, the ``--set`` overrides) with old spellings renamed, before layers merge
    (so that an old spelling in a later layer still wins over an earlier layer's new one)."""
    if not isinstance(layer, dict):
        return layer
    layer = dict(layer)
    for (section, old), new in DEPRECATED.items():
        part = layer.get(section)
        if isinstance(part, dict) and old in part:
            _deprecated(f"{section}.{old}", f"{section}.{new}", where)
            part = dict(part)
            part[new] = part.pop(old)
            layer[section] = part
    ev = layer.get("evaluate")
    if isinstance(ev, dict) and "every_epochs" in ev:
        _deprecated("evaluate.every_epochs", "train.val_every", where)
        ev = dict(ev)
        every = ev.pop("every_epochs")
        layer["evaluate"] = ev
        layer["train"] = {**(layer.get("train") or {}), "val_every": every}
    return layer


# ---- the run config -------------------------------------------------------------------------------------------
@dataclass
class RunConfig:
    """A preset after ``extends:``, overrides and validation; with ``schema`` once the data has been read.

    ``process`` and ``model`` are ``{"name": ..., **kwargs}`` mappings (with values such as ``auto`` resolved
    and the denoiser's data-dependent sizes filled in once :meth:`with_data` has run). Sections read like a
    mapping too (``cfg["process"]["name"]``), as ``config.json`` holds them.
    """

    name: str
    dataset: str
    process: dict
    model: dict
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    dataset_options: dict = field(default_factory=dict)
    description: str = ""
    schema: dict | None = None
    source: str = ""

    # ---- mapping-style reading (what config.json holds) ------------------------------------------------------
    def to_dict(self) -> dict:
        """What ``config.json`` stores (``config_version`` 3)."""
        out = {"config_version": CONFIG_VERSION, "name": self.name, "description": self.description,
               "dataset": self.dataset, "dataset_options": copy.deepcopy(self.dataset_options),
               "process": copy.deepcopy(self.process), "model": copy.deepcopy(self.model),
               "train": self.train.to_dict(), "sample": self.sample.to_dict(), "evaluate": self.evaluate.to_dict()}
        if self.finetune != FinetuneConfig():
            out["finetune"] = self.finetune.to_dict()
        if self.schema is not None:
            out["schema"] = copy.deepcopy(self.schema)
        return out

    def __getitem__(self, key: str):
        d = self.to_dict()
        if key not in d:
            raise KeyError(key)
        return d[key]

    def get(self, key: str, default=None):
        return self.to_dict().get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def with_data(self, schema, process: dict, denoiser_kwargs: dict) -> "RunConfig":
        """This config with the data's schema, the process as resolved on the data and the denoiser's sizes."""
        model = {**self.model, **denoiser_kwargs}
        return self.replace(schema=schema.to_dict(), process=dict(process), model=model)

    # ---- reading ---------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "RunConfig":
        """Validate a preset-shaped mapping (sections as in YAML) or a ``config.json`` of any version."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping of sections, got {type(d).__name__}")
        d = _respell(_upgrade(d), where)
        check_keys(d, SECTIONS + ("name", "schema", "config_version", "source"), where)
        for need in ("dataset", "process", "model"):
            if need not in d:
                raise ConfigError(f"{where}: missing section {need!r}")
        process = _check_process(d["process"], where)
        model = _check_model(d["model"], where, data_filled="schema" in d)
        evaluate = EvaluateConfig.from_dict(d.get("evaluate"), where=f"{where}: evaluate")
        train = TrainConfig.from_dict(d.get("train") or {}, where=f"{where}: train")
        sample = SampleConfig.from_dict(d.get("sample"), process["name"], where=f"{where}: sample")
        finetune = FinetuneConfig.from_dict(d.get("finetune"), where=f"{where}: finetune")
        dataset = d["dataset"]
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError(f"{where}: dataset must be a dataset name or a file path, got {dataset!r}")
        options = d.get("dataset_options") or {}
        if "schema" not in d:  # a config.json records the options its data was read with (checked then)
            check_keys(options, _dataset_options(dataset), f"{where}: dataset_options")
        return cls(name=str(d.get("name", "")), dataset=dataset, process=process, model=model, train=train,
                   sample=sample, evaluate=evaluate, finetune=finetune, dataset_options=dict(options),
                   description=str(d.get("description") or ""), schema=d.get("schema"),
                   source=str(d.get("source", "")))


def _upgrade(d: dict) -> dict:
    """A ``config.json`` of an older ``config_version`` in today's shape; checkpoint bookkeeping keys are dropped.

    Version 1 held the resolved process/model/schema/sample at the top and the raw preset under ``"preset"``.
    Versions 1 and 2 predate the GDSS network variants: their GDSS attention networks are ``graphdiff-v1``
    (:mod:`graphdiff.nn.gdss`), which a config of version 3 without ``variant`` would build as ``gdss``.
    """
    d = {k: v for k, v in d.items() if k not in ("format", "graphdiff_version", "checkpoint_files", "step",
                                                  "epoch", "seconds")}
    version = d.pop("config_version", 1 if "preset" in d else CONFIG_VERSION)
    if version == CONFIG_VERSION:
        return d
    if version not in (1, 2):
        raise ConfigError(f"config_version {version!r} is newer than this graphdiff reads ({CONFIG_VERSION})")
    if version == 1:
        preset = d.pop("preset", None) or {}
        out = {"name": preset.get("name", ""), "description": preset.get("description", ""),
               "dataset": d.get("dataset", preset.get("dataset")), "process": d["process"], "model": d["model"],
               "train": preset.get("train", {}), "sample": d.get("sample", preset.get("sample", {})),
               "evaluate": preset.get("evaluate", {}), "dataset_options": preset.get("dataset_options") or {}}
        if "schema" in d:
            out["schema"] = d["schema"]
        d = out
    return {**d, "model": _legacy_gdss_variant(d.get("model"))}


def _legacy_gdss_variant(model):
    """A GDSS model section of config version 1 or 2 with ``variant: graphdiff-v1`` on its attention networks."""
    if not isinstance(model, dict) or model.get("name") != "gdss":
        return model
    model = copy.deepcopy(model)
    for key in ("adj_net", "x_net"):
        net = model.get(key) if key in model else {}
        if isinstance(net, dict) and (key == "adj_net" or net.get("type") == "gmh"):
            model[key] = {**net, "variant": net.get("variant", "graphdiff-v1")}
    return model


def _check_process(spec, where: str) -> dict:
    from .processes import process_class

    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: process must be a mapping with a name, got {type(spec).__name__}")
    spec = dict(spec)
    if spec.get("name") is None:
        raise ConfigError(f"{where}: process.name is missing")
    cls = process_class(spec["name"])
    check_kwargs(cls, {k: v for k, v in spec.items() if k != "name"}, f"{where}: process", skip=("schema",))
    return spec


def _check_model(spec, where: str, data_filled: bool) -> dict:
    from .nn import DENOISERS

    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: model must be a mapping with a name, got {type(spec).__name__}")
    spec = dict(spec)
    name = spec.get("name")
    if name not in DENOISERS:
        raise ConfigError(f"{where}: model.name {name!r} is unknown{suggest(name, DENOISERS)}; known: "
                          f"{sorted(DENOISERS)}")
    given = {k: v for k, v in spec.items() if k != "name"}
    if data_filled:  # a config.json: the sizes the process filled in are the network's arguments too
        check_kwargs(DENOISERS[name], given, f"{where}: model")
    else:
        check_kwargs(DENOISERS[name], given, f"{where}: model", skip=INJECTED)
    return spec


def _dataset_options(dataset: str):
    import inspect

    from .data import dataset_class, is_custom, is_series_file

    if is_series_file(dataset):  # the file is the series: every other constructor argument is an option
        from .data.series_windows import SeriesWindows

        sig = inspect.signature(SeriesWindows.__init__)
        return [p for p in sig.parameters if p not in ("self", "series", "root", "split")]
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


# ---- presets --------------------------------------------------------------------------------------------------
def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str | Path) -> Path:
    """A preset by name (``gdss-qm9``; without the process prefix, ``tsdiff-wineind``, where that leaves one preset)
    or a path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.is_dir():
            raise ConfigError(f"preset {p} is a folder; give a preset name or a .yaml file")
        if not p.is_file():
            raise ConfigError(f"preset file {p} does not exist")
        return p
    f = PRESET_DIR / f"{name}.yaml"
    if f.is_file():
        return f
    # without its process prefix (tsdiff-wineind for edm-tsdiff-wineind), when that names one preset; a bare
    # dataset name (tree, lggm) is not a preset name
    short = [p for p in list_presets() if "-" in str(name) and p.split("-", 1)[-1] == str(name)]
    if len(short) == 1:
        return PRESET_DIR / f"{short[0]}.yaml"
    if short:
        raise ConfigError(f"preset {name!r} is ambiguous: name the process too ({', '.join(short)})")
    hint = suggest(name, list_presets())
    raise ConfigError(f"unknown preset {name!r}{hint}; known presets: {', '.join(list_presets())}")


def _read(path: Path, seen=()) -> dict:
    """A preset's YAML, with ``extends: OTHER`` resolved (OTHER's sections first, this file's merged on top)."""
    try:
        raw = yamlio.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
                          ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of sections")
    raw = _respell(raw, str(path))
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


def load_preset(name: str | Path | RunConfig, overrides: dict | None = None) -> RunConfig:
    """Read, merge and check a preset once: the :class:`RunConfig` every later step reads.

    A preset may start from another with ``extends: NAME``; its own sections are merged on top (mappings key by
    key, anything else replaced; a ``process``, ``model`` or ``sample`` section naming another process, model or
    sampler replaces the inherited one whole). ``overrides`` (a nested dict, e.g. from ``--set``) go on top and
    are checked the same way. A :class:`RunConfig` passed in is returned (with ``overrides`` applied).
    """
    if isinstance(name, RunConfig):
        if not overrides:
            return name
        base = {k: v for k, v in name.to_dict().items() if k != "config_version"}
        over = _respell(overrides, f"{name.source or name.name} (overrides)")
        return RunConfig.from_dict({**merge(base, over), "source": name.source}, where=name.source or name.name)
    path = preset_path(name)
    raw = merge(_read(path, (path.resolve(),)), _respell(overrides or {}, f"{path} (overrides)"))
    raw["name"] = path.stem
    raw["source"] = str(path)
    return RunConfig.from_dict(raw, where=str(path))


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
        value = yamlio.load(val)
    except yaml.YAMLError:
        value = val
    out: dict = {}
    cur = out
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def parse_overrides(items) -> dict:
    """Several ``KEY=VALUE`` strings merged into one nested dict."""
    out: dict = {}
    for item in items or ():
        out = merge(out, parse_override(item))
    return out


__all__ = ["RunConfig", "SampleConfig", "EvaluateConfig", "load_preset", "list_presets", "preset_path", "merge",
           "parse_override", "parse_overrides", "check_keys", "check_kwargs", "CONFIG_VERSION"]
