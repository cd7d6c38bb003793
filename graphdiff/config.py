"""One resolved run configuration: a preset is read, merged and validated once into a :class:`RunConfig`.

A preset is a YAML file under ``graphdiff/presets/`` (or any path) with the sections ``dataset``,
``dataset_options``, ``process``, ``model``, ``train``, ``sample`` and ``evaluate``; it may start from another with
``extends: NAME`` and takes ``--set KEY=VALUE`` overrides on top. :func:`load_preset` reads, merges and checks it
once; the trainer, validation sampling, ``sample``, ``save_pretrained`` and ``from_pretrained`` all read the
resulting object, and ``config.json`` stores its :meth:`RunConfig.to_dict` once (``config_version`` 3).

Every key is checked here, with the one "did you mean" helper of :mod:`graphdiff.checks`. The sampling step count
has one name everywhere: ``steps`` (``--steps`` on the command line, ``sample.steps`` in a preset, ``steps=`` in
:meth:`GraphDiffusionPipeline.sample`, the samplers' ``steps``); ``num_steps`` is accepted with a deprecation
warning for one release.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import yamlio
from .checks import accepted_kwargs, check_choice, check_keys, check_kwargs, suggest
from .errors import ConfigError
from .train.config import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
SECTIONS = ("description", "dataset", "dataset_options", "process", "model", "train", "sample", "evaluate",
            "finetune")
CONFIG_VERSION = 3
# denoiser arguments a process fills in from the data (``process.denoiser_kwargs()``), never set in a preset
INJECTED = ("x_dim", "max_nodes", "schema", "node_dim", "edge_dim", "cond_dim")
# sampler arguments the pipeline passes itself, never set in a preset
SAMPLER_ARGS = ("process", "denoiser", "state", "steps", "noise", "callback", "progress")
PROTOCOLS = ("gdss", "spectre")
SPLITS = ("train", "val", "test")
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


def _positive_int(value, key: str, where: str, *, optional: bool = True, minimum: int = 1):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {key} must be an integer >= {minimum}{' or null' if optional else ''}, "
                          f"got {value!r}")
    return value


# ---- the sections ---------------------------------------------------------------------------------------------
@dataclass
class SampleConfig:
    """The ``sample:`` section: how a trained model samples by default.

    Attributes:
        sampler: the sampler's name (``pc``/``em``/``s4``/``ode`` for GDSS, ``ancestral``, ``ctmc``, ``block``).
        steps: reverse steps (``None``: the sampler's default, 1000).
        batch_size: graphs per sampling batch (``None``: 1000).
        num_samples: how many graphs ``graphdiff sample`` and ``graphdiff bench`` draw when not told.
        seed: the seed of :meth:`GraphDiffusionPipeline.sample` when none is given.
        use_ema: sample with the EMA weights when the checkpoint has them.
        knobs: the sampler's own settings (``snr``, ``eta``, ``time_distortion``, ``prefix_cache``, ...).
        self_guidance: defaults of observation self-guidance (``guide="self"``, forecasting, inpainting) for a
            model on a fixed grid or path graph: ``scale`` and ``variant`` (``mse`` or ``quantile``), e.g. the
            scale ``graphdiff models pack`` chose on validation windows; arguments given at sampling time win.
    """

    sampler: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    num_samples: int | None = None
    seed: int = 0
    use_ema: bool = True
    knobs: dict = field(default_factory=dict)
    self_guidance: dict = field(default_factory=dict)

    FIELDS = ("sampler", "steps", "batch_size", "num_samples", "seed", "use_ema", "self_guidance")

    @classmethod
    def from_dict(cls, d: dict | None, process: str, where: str = "sample") -> "SampleConfig":
        from .samplers import SAMPLERS

        d = dict(d or {})
        table = SAMPLERS.get(process, {})
        sampler = d.get("sampler")
        if sampler is not None and sampler not in table:
            raise ConfigError(f"{where}: sampler {sampler!r} is unknown{suggest(sampler, table)}; "
                              f"choose from {', '.join(sorted(table))}")
        fns = [table[sampler]] if sampler is not None else list(table.values())
        knob_names = sorted({k for fn in fns for k in accepted_kwargs(fn, SAMPLER_ARGS)})
        check_keys(d, list(cls.FIELDS) + knob_names, where)
        out = cls(**{k: d.pop(k) for k in cls.FIELDS if k in d}, knobs=d)
        out.steps = _positive_int(out.steps, "steps", where)
        out.batch_size = _positive_int(out.batch_size, "batch_size", where)
        out.num_samples = _positive_int(out.num_samples, "num_samples", where)
        out.seed = _positive_int(out.seed, "seed", where, optional=False, minimum=0)
        if not isinstance(out.use_ema, bool):
            raise ConfigError(f"{where}: use_ema must be true or false, got {out.use_ema!r}")
        out.self_guidance = _self_guidance_defaults(out.self_guidance, f"{where}: self_guidance")
        return out

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.FIELDS if getattr(self, k) not in (None, {})}
        out.update(self.knobs)
        return out


SELF_GUIDANCE_VARIANTS = ("mse", "quantile")


def _self_guidance_defaults(d, where: str) -> dict:
    """A checked copy of ``sample.self_guidance`` (``scale`` >= 0, ``variant`` mse/quantile, ``replace`` true/false;
    nothing else)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping with scale and variant, got {d!r}")
    check_keys(d, ["scale", "variant", "replace"], where)
    out = dict(d)
    if "scale" in out:
        s = out["scale"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0:
            raise ConfigError(f"{where}: scale must be a number >= 0, got {s!r}")
        out["scale"] = float(s)
    if "variant" in out:
        check_choice(out["variant"], SELF_GUIDANCE_VARIANTS, f"{where}: variant")
    if "replace" in out and not isinstance(out["replace"], bool):
        raise ConfigError(f"{where}: replace must be true or false, got {out['replace']!r}")
    return out


@dataclass
class EvaluateConfig:
    """The ``evaluate:`` section: validation sampling during training and the benchmark protocol.

    Attributes:
        protocol: graph MMD conventions, ``gdss`` or ``spectre``.
        reference: the split samples are compared with.
        num_samples: graphs sampled per validation (``None``: 256 molecules, or the reference split's size up to
            256 graphs).
        steps: sampling steps of validation samples.
    """

    protocol: str = "gdss"
    reference: str = "test"
    num_samples: int | None = None
    steps: int = 100

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "evaluate") -> "EvaluateConfig":
        d = dict(d or {})
        check_keys(d, [f.name for f in dataclasses.fields(cls)], where)
        out = cls(**d)
        check_choice(out.protocol, PROTOCOLS, f"{where}: protocol")
        check_choice(out.reference, SPLITS, f"{where}: reference")
        out.num_samples = _positive_int(out.num_samples, "num_samples", where)
        out.steps = _positive_int(out.steps, "steps", where, optional=False)
        return out

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class FinetuneConfig:
    """The ``finetune:`` section: how ``graphdiff finetune`` / ``pipe.finetune`` continues from a base model, and
    the lineage of a fine-tuned model.

    Attributes:
        lr: peak learning rate of the fine-tune (``None``: the base run's ``train.lr``).
        warmup_steps: linear warm-up of the fine-tune's fresh schedule.
        freeze: regular expression over parameter names; matching parameters are not trained.
        lora_rank: rank of LoRA adapters (through ``peft``) on the denoiser's linear layers; 0: full fine-tune.
        lora_alpha: LoRA scaling numerator (``None``: twice the rank).
        lora_dropout: dropout on the LoRA path.
        condition_transfer: where every training graph has the same value of a categorical condition (one domain),
            start that value's input column from the value under which the base model's loss on the data is lowest,
            when that is another value and the difference is beyond the noise of the comparison
            (:mod:`graphdiff.condition_transfer`: a domain the base never trained on starts from the closest
            trained one; a trained domain keeps its column).
        lineage: one record per fine-tune this model went through (base model, its sha256, data, steps), oldest
            first; written by the fine-tune, not by hand.
    """

    lr: float | None = None
    warmup_steps: int = 100
    freeze: str | None = None
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    condition_transfer: bool = False
    lineage: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "finetune") -> "FinetuneConfig":
        d = dict(d or {})
        check_keys(d, [f.name for f in dataclasses.fields(cls)], where)
        out = cls(**d)
        if out.lr is not None and not (isinstance(out.lr, (int, float)) and out.lr > 0):
            raise ConfigError(f"{where}: lr must be a positive number, got {out.lr!r}")
        out.warmup_steps = _positive_int(out.warmup_steps, "warmup_steps", where, optional=False, minimum=0)
        out.lora_rank = _positive_int(out.lora_rank, "lora_rank", where, optional=False, minimum=0)
        if not isinstance(out.condition_transfer, bool):
            raise ConfigError(f"{where}: condition_transfer must be true or false, got {out.condition_transfer!r}")
        if out.freeze is not None:
            import re

            try:
                re.compile(str(out.freeze))
            except re.error as exc:
                raise ConfigError(f"{where}: freeze {out.freeze!r} is not a regular expression ({exc})") from None
        if not isinstance(out.lineage, list):
            raise ConfigError(f"{where}: lineage must be a list, got {type(out.lineage).__name__}")
        return out

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


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
    # without its process prefix (tsdiff-wineind for edm-tsdiff-wineind), when that names one preset
    short = [p for p in list_presets() if p.split("-", 1)[-1] == str(name)]
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
