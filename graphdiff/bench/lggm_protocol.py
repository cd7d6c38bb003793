"""The settings of one ``graphdiff bench run lggm`` (:mod:`graphdiff.bench.lggm`): :class:`Protocol`, read from the
``--set lggm.KEY=VALUE`` keys and the ``bench run`` options, each checked with a one-line error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_choice, check_keys
from ..errors import ConfigError

DEFAULT_HELD_OUT = ("planar", "sbm", "enzymes", "ego_small")
METHODS = ("zero-shot", "fine-tuned", "scratch")
GIVEN = ("by_size", "mean")  # lggm.given: how a sample's numeric conditions come from the graphs a model was given
NODE_COUNTS = "the held-out domain's test-split node counts (the same sizes for every method)"


@dataclass(frozen=True)
class Protocol:
    """The settings of one run (``--set lggm.KEY=VALUE`` for the keys below; ``--minutes``, ``--samples``,
    ``--steps`` and ``--bootstrap`` for the others).

    Attributes:
        held_out: the held-out domains (default: the suite's entries).
        train_graphs: sizes of the few-shot training sets of the held-out domain.
        finetune_steps: ``K``, optimizer steps of every fine-tune and every from-scratch run.
        pretrain_minutes: wall-clock budget of each pre-training (``None``: steps only).
        pretrain_steps: optimizer-step cap of each pre-training (``None``: minutes only).
        sample_steps: sampling steps of every model.
        samples: graphs sampled per model (``None``: the held-out test split's size).
        sample_batch: graphs per sampling batch.
        bootstrap: bootstrap resamples of each MMD interval.
        seed: sampling seed (training seeds are the presets' ``train.seed``).
        pretrained: a previous lggm run's ``--out`` folder whose pre-trained models this run fine-tunes instead
            of pre-training again (each held-out domain's ``runs/<domain>/pretrain``, with the pre-training record
            of that run's ``results.json``; its corpus must be the one this run would pre-train on).
        select_every: 0 (default): each arm is scored as its ``K``-th step leaves it; ``S``: both arms keep the
            weights with the lowest validation MMD^2 among every ``S``-th step and the last (and the fine-tune's
            starting point), :mod:`graphdiff.bench.lggm_select`.
        given: how a sample's numeric conditions (density, clustering) are taken from the graphs the model was
            given: ``by_size`` (default), the mean over the ones nearest the sample's node count; ``mean``, the mean
            over all of them, the same for every sample.
        methods: the arms to run, of ``zero-shot``, ``fine-tuned`` and ``scratch`` (default all three; e.g. only
            ``fine-tuned`` to try other ``finetune.*`` settings against an earlier run's scratch rows on the same
            ``lggm.pretrained`` base, read together by ``graphdiff bench compare A B``). A scratch-only run
            pre-trains nothing: the scratch arm owes nothing to a base (it shares only the corpus's scaling of the
            numeric conditions), so its rows pair with the fine-tunes of any base on that corpus asked for their
            conditions by the same ``given`` rule.
    """

    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    train_graphs: tuple[int, ...] = (10, 50)
    finetune_steps: int = 300
    pretrain_minutes: float | None = 8.0
    pretrain_steps: int | None = None
    sample_steps: int = 50
    samples: int | None = None
    sample_batch: int = 16
    bootstrap: int = 100
    seed: int = 0
    pretrained: str | None = None
    select_every: int = 0
    methods: tuple[str, ...] = METHODS
    given: str = "by_size"

    KEYS = ("held_out", "train_graphs", "finetune_steps", "pretrain_steps", "sample_steps", "sample_batch", "seed",
            "pretrained", "select_every", "methods", "given")

    @classmethod
    def from_run(cls, settings: dict | None, *, held_out, minutes, samples, steps, bootstrap,
                 default_minutes: float | None = pretrain_minutes,
                 default_steps: int = sample_steps) -> "Protocol":
        """The protocol of ``lggm.*`` settings and the ``bench run`` options. ``default_minutes`` (the suite
        entry's pre-training budget) applies unless ``--minutes`` or ``lggm.pretrain_steps`` is given;
        ``default_steps`` (the entry's sampling steps) unless ``--steps`` or ``lggm.sample_steps`` is."""
        from ..data.multidomain import DOMAIN_NAMES

        s = dict(settings or {})
        check_keys(s, cls.KEYS, "--set lggm")
        names = s.get("held_out", held_out)
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ConfigError("--set lggm.held_out: give at least one domain")
        for d in names:
            check_choice(d, DOMAIN_NAMES, "lggm.held_out", error=ConfigError)
        ns = s.get("train_graphs", cls.train_graphs)
        ns = [ns] if isinstance(ns, int) else list(ns)

        def positive(v, what, optional=False):
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{what} must be a positive integer, got {v!r}")
            return int(v)

        ns = [positive(n, "lggm.train_graphs") for n in ns]
        if not ns:
            raise ConfigError("--set lggm.train_graphs: give at least one training-set size")
        pre_steps = positive(s.get("pretrain_steps"), "lggm.pretrain_steps", optional=True)
        seed = s.get("seed", cls.seed)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"lggm.seed must be a non-negative integer, got {seed!r}")
        every = s.get("select_every", cls.select_every)
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
            raise ConfigError(f"lggm.select_every must be an integer >= 0 (0: no selection), got {every!r}")
        methods = s.get("methods", cls.methods)
        if not isinstance(methods, (str, list, tuple)):
            raise ConfigError(f"lggm.methods must be a list of arms ({', '.join(METHODS)}), got {methods!r}")
        methods = [methods] if isinstance(methods, str) else list(methods)
        if not methods:
            raise ConfigError("--set lggm.methods: give at least one of " + ", ".join(cls.methods))
        for m in methods:
            check_choice(m, METHODS, "lggm.methods", error=ConfigError)
        given = s.get("given", cls.given)
        check_choice(given, GIVEN, "lggm.given", error=ConfigError)
        if minutes is None:  # a step-capped pre-training (tests, quick checks) has no clock budget unless asked
            minutes = None if pre_steps is not None else default_minutes
        return cls(held_out=tuple(dict.fromkeys(names)), train_graphs=tuple(dict.fromkeys(ns)),
                   finetune_steps=positive(s.get("finetune_steps", cls.finetune_steps), "lggm.finetune_steps"),
                   pretrain_minutes=minutes, pretrain_steps=pre_steps,
                   sample_steps=positive((steps or [s.get("sample_steps", default_steps)])[0], "sample steps"),
                   samples=samples, sample_batch=positive(s.get("sample_batch", cls.sample_batch),
                                                          "lggm.sample_batch"),
                   bootstrap=bootstrap, seed=seed, pretrained=_folder(s.get("pretrained")), select_every=int(every),
                   methods=tuple(m for m in METHODS if m in methods), given=given)


def _folder(v) -> str | None:
    if v is None:
        return None
    if not isinstance(v, (str, Path)) or not str(v):
        raise ConfigError(f"lggm.pretrained must be a folder (a previous lggm run's --out), got {v!r}")
    path = Path(v).expanduser()
    if not (path / "results.json").is_file():
        raise ConfigError(f"lggm.pretrained: {path} has no results.json (give a previous lggm run's --out folder)")
    return str(path.resolve())


__all__ = ["Protocol", "DEFAULT_HELD_OUT", "METHODS", "GIVEN", "NODE_COUNTS"]
