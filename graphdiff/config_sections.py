"""The ``sample:``, ``evaluate:`` and ``finetune:`` sections of a run configuration (:mod:`graphdiff.config`): each
a dataclass that checks its keys and values once, with one-line errors naming the key and the closest valid one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .checks import accepted_kwargs, check_choice, check_keys, suggest
from .errors import ConfigError

# sampler arguments the pipeline passes itself, never set in a preset
SAMPLER_ARGS = ("process", "denoiser", "state", "steps", "noise", "callback", "progress")
PROTOCOLS = ("gdss", "spectre")
SPLITS = ("train", "val", "test")


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


MARGINALS = ("data", "base")  # finetune.marginals


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
        marginals: the node / edge marginals of the fine-tuned model's schema, which set the limit distribution of
            the DiGress / DeFoG "marginal" noise: ``"data"`` (default) the new data's, ``"base"`` the base model's,
            so the noise the network learned to remove stays the same (only without new categories, and only for a
            process with marginal limits). Not inherited: fine-tuning a fine-tuned model again starts from "data".
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
    marginals: str = "data"
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
        if out.marginals not in MARGINALS:
            raise ConfigError(f"{where}: marginals must be one of {', '.join(MARGINALS)}, got {out.marginals!r}")
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
