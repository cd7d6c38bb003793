"""GraphDiffusionPipeline: the one object a casual user touches (diffusers-style).

    pipe = GraphDiffusionPipeline.from_pretrained("runs/qm9")
    smiles = pipe.sample(1000, steps=500, seed=0, output="smiles")
    pipe = GraphDiffusionPipeline.fit("community_small", preset="gdss-community_small", out="runs/cs")
    pipe.save_pretrained("my-model")
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from .config import SAMPLER_ARGS, RunConfig, load_preset
from .errors import CheckpointError, ConfigError, TrainingError
from .sample_workers import check_workers
from .state import GraphState

OUTPUTS = ("state", "networkx", "rdkit", "smiles", "pyg")


class _fit_method:
    """``Pipeline.fit(dataset, preset=...)`` builds and trains a new pipeline; ``pipe.fit(dataset)`` trains on."""

    def __get__(self, obj, cls):
        if obj is None:
            return lambda dataset=None, **kw: cls._fit_new(dataset, **kw)
        return lambda dataset=None, **kw: obj._fit_existing(dataset, **kw)


def shard_range(n: int, index: int, count: int) -> tuple[int, int]:
    """Samples ``[lo, hi)`` of shard ``index`` of ``count`` over ``n`` samples: contiguous, sizes differ by at most
    one, in order (shard 0 first)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ConfigError(f"shard count must be a positive integer, got {count!r}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ConfigError(f"shard index must be in 0..{count - 1}, got {index!r}")
    if count > n:
        raise ConfigError(f"{n} samples cannot be split into {count} shards (at most one shard per sample)")
    base, extra = divmod(int(n), int(count))
    lo = index * base + min(index, extra)
    return lo, lo + base + (1 if index < extra else 0)


class GraphDiffusionPipeline:
    """A process, a denoiser and the configuration that rebuilds them.

    Args:
        process: e.g. :class:`graphdiff.processes.GDSSProcess`.
        denoiser: the network (EMA weights when the checkpoint has them and ``use_ema`` is on).
        config: the resolved :class:`~graphdiff.config.RunConfig` (what ``config.json`` holds); a mapping is
            read as one.
    """

    fit = _fit_method()

    def __init__(self, process, denoiser: torch.nn.Module, config: RunConfig | dict):
        self.process = process
        self.denoiser = denoiser
        self.config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        self.schema = process.schema
        self.source: dict | None = None  # where from_pretrained loaded it from
        self.trained_steps = 0  # optimizer steps behind these weights (config.json's "step")

    @property
    def total_steps(self) -> int:
        """Optimizer steps behind these weights, counting every fine-tune and the base it started from (a fine-tuned
        model's ``trained_steps`` counts only its own fine-tune)."""
        lineage = self.config.finetune.lineage
        if lineage and isinstance(lineage[-1].get("base_steps"), int):
            return int(lineage[-1]["base_steps"]) + int(self.trained_steps)
        return int(self.trained_steps)

    def with_denoiser(self, denoiser: torch.nn.Module) -> "GraphDiffusionPipeline":
        """The same process and config around other weights (validation samples from the training EMA)."""
        return type(self)(self.process, denoiser, self.config)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.denoiser.parameters())
        return (f"GraphDiffusionPipeline(process={self.process.name!r}, dataset={self.config.dataset!r}, "
                f"parameters={n:,})")

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device) -> "GraphDiffusionPipeline":
        from .checks import check_device

        if isinstance(device, (str, torch.device)):  # anything else (None, a dtype) goes to nn.Module.to as is
            device = check_device(device)
        self.denoiser.to(device)
        return self

    # ---- building -----------------------------------------------------------------------------------
    @staticmethod
    def build(config: RunConfig | dict, schema=None):
        """Process and denoiser from a resolved config (or a ``config.json``-style dict)."""
        from .nn import DENOISERS
        from .processes import build_process
        from .schema import Schema

        if not isinstance(config, RunConfig):
            config = RunConfig.from_dict(config)
        schema = schema or Schema.from_dict(config.schema)
        process = build_process(config.process, schema)
        model = dict(config.model)
        name = model.pop("name")
        if name not in DENOISERS:
            raise CheckpointError(f"model.name {name!r} is unknown; known: {sorted(DENOISERS)}")
        params = inspect.signature(DENOISERS[name]).parameters.values()
        missing = [p.name for p in params if p.default is inspect.Parameter.empty
                   and p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in model]
        if missing:
            raise ConfigError(f"model {name!r} needs {', '.join(f'model.{k}' for k in missing)} (see the presets of "
                              f"its process, e.g. graphdiff/presets/)")
        denoiser = DENOISERS[name](**model)
        return process, denoiser

    @classmethod
    def from_preset(cls, preset, dataset=None, *, root=None, overrides: dict | None = None):
        """An untrained pipeline for ``preset`` (a name, a YAML path or a :class:`~graphdiff.config.RunConfig`) on
        ``dataset`` (default: the preset's). Its initial weights depend only on ``train.seed`` (drawn from a
        generator of their own: torch's global random state is neither read nor changed)."""
        from .data import dataset_record, load_dataset
        from .processes import build_process, process_class

        if isinstance(dataset, Path):
            dataset = str(dataset)
        if isinstance(dataset, str):  # the dataset actually used is the one its options are checked against
            overrides = {**(overrides or {}), "dataset": dataset}
        cfg = load_preset(preset, overrides)
        from .processes.mixed3d import Mixed3DProcess

        three_d = issubclass(process_class(cfg.process["name"]), Mixed3DProcess)
        name = dataset or cfg.dataset
        if three_d and isinstance(name, str) and name.lower().endswith((".sdf", ".sdf.gz")) and (
                "with_pos" not in cfg.dataset_options):  # a 3D model trains on an .sdf's conformers
            cfg = cfg.replace(dataset_options={**cfg.dataset_options, "with_pos": True})
        if dataset is None or isinstance(dataset, str):
            ds = load_dataset(name, root=root, **cfg.dataset_options)
        else:
            ds = dataset
        from .data.base import dataset_label

        if len(ds.split("train")) == 0:
            raise TrainingError(f"dataset {dataset_label(ds)} has an empty training split")
        store = getattr(ds, "store", None)  # a wrapper without a store is trusted; a store without coordinates not
        if three_d and store is not None and getattr(store, "pos", None) is None:
            raise ConfigError(f"{cfg.name or 'the preset'} is a 3D model: dataset {dataset_label(ds)} has no "
                              "coordinates (use qm9_3d, an .xyz, or an .sdf with conformers)")
        from .data.base import note_invalid_rows, train_schema

        note_invalid_rows(ds)

        schema = train_schema(ds)
        proc = process_class(cfg.process["name"]).resolve(cfg.process, schema, ds.split("train"))
        process = build_process(proc, schema)
        recorded, options = dataset_record(cfg.dataset if dataset is None else dataset, ds, cfg.dataset_options)
        config = cfg.with_data(schema, process.to_dict(), process.denoiser_kwargs()).replace(
            dataset=recorded, dataset_options=options)
        from .train.schedule import seeded_init

        with seeded_init(config.train.seed, "init"):  # the initial weights follow train.seed, not what ran before
            _, denoiser = cls.build(config, schema)
        pipe = cls(process, denoiser, config)
        pipe._dataset = ds
        return pipe

    def compile(self, **options) -> "GraphDiffusionPipeline":
        """Sample through ``torch.compile(denoiser, dynamic=True, **options)`` from now on (:attr:`denoiser` stays
        the plain module for saving and training): one compiled graph serves every batch shape (the first call
        compiles, about a minute on a 2-core CPU). ``dynamic=False`` compiles static kernels per batch shape, which
        can be faster where one shape dominates (GDSS on QM9: ``benchmarks/gdss_authors_speed.py``). The samples
        are those of the plain module up to float rounding (identical SMILES for ``qm9-defog``:
        ``benchmarks/sampling_compile.py``). The weights stay inputs of the compiled graph, so training or
        ``load_state_dict`` after compiling is what the compiled module samples with. (Inductor's weight freezing
        is not used: a module compiled again after training would reuse a frozen graph with the old weights.)

        Args:
            options: passed to ``torch.compile``.
        """
        self._compiled = torch.compile(self.denoiser, **{"dynamic": True, **options})
        self._compiled_warm = False  # the next sampling call compiles (and says so)
        self._compile_options = dict(options)  # what worker processes compile with (sample(..., workers=K))
        return self

    @property
    def _network(self):
        """What sampling calls: the compiled denoiser after :meth:`compile`, else the denoiser."""
        compiled = getattr(self, "_compiled", None)
        if compiled is None or compiled._orig_mod is not self.denoiser:
            return self.denoiser
        return compiled

    # ---- persistence --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, *, use_ema: bool | None = None, device="cpu",
                        sha256: str | None = None) -> "GraphDiffusionPipeline":
        """Load a model: a checkpoint folder (or a run folder holding ``checkpoint/``), a bundled model's name
        (``graphdiff models list``), an archive URL with ``#sha256=...``, or ``hf:owner/repo`` (see
        :mod:`graphdiff.hub`). Never unpickles code. Subnormal weights are set to zero
        (:func:`~graphdiff.train.checkpoint.flush_subnormal_`; their count is ``pipe.flushed_subnormal``): the
        outputs stay the same up to float rounding, and CPU sampling does not pay for subnormal arithmetic."""
        from .hub import resolve_model
        from .train.checkpoint import flush_subnormal_, load_checkpoint, load_weights, resolve_checkpoint

        ckpt = load_checkpoint(resolve_checkpoint(resolve_model(path, sha256=sha256)))
        for key in ("process", "model", "schema"):
            if key not in ckpt.config:
                raise CheckpointError(f"{ckpt.path / 'config.json'}: missing key {key!r}")
        try:
            config = RunConfig.from_dict(ckpt.config, where=str(ckpt.path / "config.json"))
            process, denoiser = cls.build(config)
        except ConfigError as exc:
            msg = str(exc)
            where = str(ckpt.path / "config.json")
            raise CheckpointError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        if use_ema is None:
            use_ema = config.sample.use_ema
        state = ckpt.ema_state if (use_ema and ckpt.ema_state is not None) else ckpt.model_state
        ft = config.finetune
        if ft.lora_rank and any(k.startswith("base_model.model.") for k in state):
            # a LoRA fine-tune's training checkpoint holds the adapters beside the base weights: merged here,
            # as the fine-tune merges them into its model/ folder
            from .finetune import add_lora, merge_lora

            wrapped = add_lora(denoiser, ft.lora_rank, ft.lora_alpha, ft.lora_dropout)
            load_weights(wrapped, state, str(ckpt.path))
            denoiser = merge_lora(wrapped)
        else:
            load_weights(denoiser, state, str(ckpt.path))
        flushed = flush_subnormal_(denoiser)
        denoiser.eval()
        pipe = cls(process, denoiser, config).to(device)
        pipe.trained_steps = ckpt.step
        pipe.flushed_subnormal = flushed
        pipe.source = {"model": str(path), "folder": str(ckpt.path)}
        return pipe

    def save_pretrained(self, path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (the weights this pipeline samples with)."""
        from .train.checkpoint import save_checkpoint

        return save_checkpoint(Path(path), config={**self.config.to_dict(), "step": int(self.trained_steps)},
                               model=self.denoiser)

    def finetune(self, dataset, *, out, **kw) -> "GraphDiffusionPipeline":
        """Fine-tune on ``dataset``: categories aligned by name, new ones grown, fresh optimizer, EMA from these
        weights, optional ``freeze_pattern`` / ``lora`` rank; the result is saved to ``<out>/model``. See
        :func:`graphdiff.finetune.finetune` for the arguments."""
        from .finetune import finetune

        return finetune(self, dataset, out=out, **kw)

    # ---- sampling -----------------------------------------------------------------------------------
    def __call__(self, n: int, **kwargs):
        """``pipe(n, ...)`` is ``pipe.sample(n, ...)``, as a diffusers pipeline is called."""
        return self.sample(n, **kwargs)

    def sample(self, n: int, *, steps: int | None = None, sampler: str | None = None, seed: int | None = None,
               generator: torch.Generator | None = None, n_nodes=None, batch_size: int | None = None,
               callback=None, output: str = "state", progress: bool = True, cond=None, guidance: float | None = None,
               shard: tuple[int, int] | None = None, num_steps: int | None = None, guide: str | None = None,
               reward=None, guide_options: dict | None = None, workers: int | None = None, **sampler_kwargs):
        """Generate ``n`` graphs.

        Args:
            steps: reverse steps (default: the config's ``sample.steps``). ``num_steps`` is its deprecated spelling.
            sampler: ``"pc"``, ``"em"``, ``"s4"`` or ``"ode"`` for GDSS (default: the config's).
            seed: sample ``i`` depends only on ``(seed, i)``, not on ``batch_size`` nor on sharding (default: the
                config's ``sample.seed``); a ``generator`` draws the seed.
            n_nodes: an int or a sequence of ``n`` sizes (default: drawn from the training node-count histogram).
            callback: ``callback(step, t, state)`` after each step.
            output: ``"state"`` (decoded GraphState), ``"networkx"``, ``"rdkit"``, ``"smiles"`` or ``"pyg"``.
            cond: graph-level conditions, ``[Fy]`` (the same for every sample) or ``[n, Fy]``; processes trained
                with conditions only. A mapping gives them by name (``{"domain": "planar", "n_nodes": 64}``, see
                :func:`graphdiff.data.conditions.condition_tensor`); its ``n_nodes`` is then also the default size.
            guidance: classifier-free guidance weight ``w`` (logits ``(1 + w) cond - w uncond``).
            shard: ``(i, k)``: only samples ``shard_range(n, i, k)`` of the ``n`` (shard ``i`` of ``k``, contiguous);
                the ``k`` shards' outputs, concatenated in order, are the unsharded output.
            sampler_kwargs: sampler knobs (``snr``, ``scale_eps``, ``predictor``, ``eps``).
            guide: steer the samples toward a ``reward`` (``"best_of_n"``; see :mod:`graphdiff.guidance`), with
                ``guide_options`` (e.g. ``{"N": 10}``); the chosen samples' rewards and the cost per sample
                (network calls, reward calls) are kept in ``pipe.last_guidance``.
            workers: sample in this many one-thread worker processes on CPU, each drawing a contiguous shard (the
                same samples as one process; see :mod:`graphdiff.sample_workers`). Not with ``guide``, ``shard`` or
                ``callback``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
        if output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {output!r}")
        for name, value in (("seed", seed), ("batch_size", batch_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or (name == "batch_size" and value < 1)):
                what = "a positive integer" if name == "batch_size" else "an integer"
                raise ConfigError(f"{name} must be {what}, got {value!r}")
        if guide is None and (reward is not None or guide_options):
            raise ConfigError("reward and guide_options steer a guide: name one with guide=... (e.g. 'best_of_n')")
        workers = 1 if workers is None else check_workers(workers)
        if workers > 1:
            for name, value in (("guide", guide), ("shard", shard), ("callback", callback)):
                if value is not None:
                    raise ConfigError(f"workers and {name}: a {name} does not run in worker processes; drop one")
        if guide is not None:
            from .guidance.guides import run_guide

            if shard is not None:
                raise ConfigError("guide and shard: a guided run is not sharded (each sample's search is whole)")
            res = run_guide(self, n, guide, reward, steps=steps, sampler=sampler, seed=seed, generator=generator,
                            n_nodes=n_nodes, batch_size=batch_size, callback=callback, progress=progress, cond=cond,
                            guidance=guidance, num_steps=num_steps, **(guide_options or {}), **sampler_kwargs)
            self.last_guidance = res
            return self._convert(res.state, output)
        from .checks import check_kwargs
        from .samplers import SampleNoise, sample, sampler_fn

        if num_steps is not None:
            warnings.warn("sample(num_steps=...) is deprecated, use steps=... (the old name goes in the next "
                          "release)", DeprecationWarning, stacklevel=2)
            steps = num_steps if steps is None else steps
        defaults = self.config.sample
        steps = defaults.steps or 1000 if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {steps!r}")
        name = sampler or defaults.sampler or "pc"
        fn = sampler_fn(self.process, name)
        check_kwargs(fn, sampler_kwargs, f"sampler {name!r}", skip=SAMPLER_ARGS)
        params = inspect.signature(fn).parameters
        accepted = set(params) - set(SAMPLER_ARGS)
        for key, value in sampler_kwargs.items():  # a knob whose default is a number takes a number
            default = params[key].default
            if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                    isinstance(value, bool) or not isinstance(value, numbers.Real)):
                raise ConfigError(f"sampler {name!r}: {key} must be a number, got {value!r}")
        knobs = {k: v for k, v in defaults.knobs.items() if k in accepted}
        knobs.update(sampler_kwargs)
        named = cond if isinstance(cond, Mapping) else {}
        cond = self._cond(cond, n, accepted, name)
        if n_nodes is None and "n_nodes" in named:  # a size asked for by name is also the size drawn
            n_nodes = [int(round(float(v))) for v in np.broadcast_to(np.asarray(named["n_nodes"], float), (n,))]
        if guidance is not None:
            if "guidance" not in accepted:
                raise ConfigError(f"sampler {name!r} of process {self.process.name!r} has no guidance")
            knobs["guidance"] = float(guidance)
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        seed = defaults.seed if seed is None else int(seed)
        sizes = self._sizes(n, n_nodes)  # checked (and a generator read) once, before any work
        n_nodes = None if sizes is None else sizes.tolist()
        if workers > 1:  # every argument checked here; each worker samples its shard (graphdiff.sample_workers)
            from .sample_workers import sample_in_workers

            state = sample_in_workers(self, n, workers, steps=int(steps), sampler=name, seed=seed, n_nodes=n_nodes,
                                      batch_size=batch_size, cond=cond, guidance=guidance, **sampler_kwargs)
            return self._convert(state, output)
        lo, hi = (0, n) if shard is None else shard_range(n, *shard)
        bs = int(batch_size or defaults.batch_size or 1000)
        if bs < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {bs}")
        noise = SampleNoise.for_run(seed, lo, hi - lo, self.device)
        drawn = noise.node_counts(self.schema.node_count_probs())  # always drawn: streams never depend on n_nodes
        sizes = drawn if sizes is None else sizes[lo:hi]
        cond = None if cond is None else cond[lo:hi]
        # batches of similar sizes waste less on padding; sample i keeps its own stream, so the order is free
        order = torch.argsort(sizes, stable=True)
        parts = []
        network = self._network
        if network is not self.denoiser and not getattr(self, "_compiled_warm", False) and progress:
            from .progress import stage  # a progress bar's first step would hold the compile time without a word

            stage("compiling the denoiser (torch.compile; about a minute on 2 CPU cores): the first step of the "
                  "first batch includes it")
        self._compiled_warm = network is not self.denoiser
        for start in range(0, hi - lo, bs):
            idx = order[start:start + bs]
            if cond is not None:
                knobs["cond"] = cond[idx].to(self.device)
            parts.append(sample(self.process, network, sizes[idx], steps=int(steps), sampler=name,
                                noise=noise.subset(idx), callback=callback, progress=progress, **knobs))
        state = GraphState.cat(parts)[torch.argsort(order)]
        return self._convert(state, output)

    def _cond(self, cond, n: int, accepted, name: str):
        if cond is None:
            return None
        if "cond" not in accepted:
            raise ConfigError(f"process {self.process.name!r} (sampler {name!r}) takes no conditions")
        if isinstance(cond, Mapping):
            from .data.conditions import condition_tensor

            return condition_tensor(self.schema, cond, n)
        c = torch.as_tensor(np.asarray(cond, dtype=np.float32))
        if c.dim() == 0:  # one number: the value of a model's single condition column
            c = c.reshape(1)
        if c.dim() == 1:
            c = c.unsqueeze(0).expand(n, -1)
        width = len(self.schema.graph_features)
        if width == 0:
            raise ConfigError("cond: this model was trained without graph conditions; sample without cond")
        if c.dim() != 2 or c.shape[0] != n or c.shape[1] != width:
            raise ConfigError(f"cond must be [{width}] or [{n}, {width}] (graph features "
                              f"{list(self.schema.graph_features)}), got {list(c.shape)}")
        return c

    def _sizes(self, n, n_nodes):
        if n_nodes is None:
            return None
        from .checks import as_integer

        if isinstance(n_nodes, torch.Tensor):
            n_nodes = n_nodes.detach().cpu().numpy()
        if isinstance(n_nodes, np.ndarray):
            if n_nodes.dtype.kind not in "iu":
                raise ConfigError(f"n_nodes must hold integers, got an array of {n_nodes.dtype}")
            n_nodes = n_nodes.tolist()
        one = as_integer(n_nodes)
        if one is not None:
            listed = [one] * n
        elif isinstance(n_nodes, (str, bytes)) or not isinstance(n_nodes, Iterable):
            listed = None
        else:
            listed = [as_integer(v) for v in n_nodes]
        if listed is None or None in listed:
            raise ConfigError(f"n_nodes must be an integer or a sequence of {n} integers, got {n_nodes!r}")
        sizes = torch.as_tensor(listed, dtype=torch.long)
        if len(sizes) != n:
            raise ConfigError(f"n_nodes has {len(sizes)} entries for {n} samples")
        if int(sizes.min()) < 1 or int(sizes.max()) > self.schema.max_nodes:
            raise ConfigError(f"n_nodes must lie in 1..{self.schema.max_nodes} (the schema's max nodes), "
                              f"got {int(sizes.min())}..{int(sizes.max())}")
        return sizes.long()

    def _convert(self, state: GraphState, output: str):
        state = state.to("cpu")
        if output == "state":
            return state
        if output == "networkx":
            from .convert.networkx import to_networkx

            return to_networkx(state, self.schema)
        if output == "pyg":
            return state.to_pyg(self.schema)
        if self.schema.kind != "molecule":
            raise ConfigError(f"output={output!r} needs a molecule model; this one generates {self.schema.kind}s")
        schema = state.schema if state.pos is not None and state.schema is not None else self.schema
        if state.pos is not None and output == "rdkit":  # 3D: molecules with a conformer
            from .convert.rdkit3d import to_mols3d

            return to_mols3d(state, schema)
        from .convert.rdkit import to_mol, to_smiles

        return to_mol(state, schema) if output == "rdkit" else to_smiles(state, schema)

    # ---- training -----------------------------------------------------------------------------------
    @classmethod
    def _fit_new(cls, dataset=None, *, preset, out, root=None, overrides: dict | None = None,
                 max_minutes: float | None = None, resume: bool = False, progress: bool = True, callbacks=(),
                 overwrite: bool = False):
        from .train.run_folder import check_fresh_run_folder, check_resume_or_overwrite

        check_resume_or_overwrite(resume, overwrite)  # before any data work
        if not resume and not overwrite:
            check_fresh_run_folder(Path(out))
        pipe = cls.from_preset(preset, dataset, root=root, overrides=overrides)
        return pipe._fit_existing(pipe._dataset, out=out, max_minutes=max_minutes, resume=resume,
                                  progress=progress, callbacks=callbacks, overwrite=overwrite)

    def _fit_existing(self, dataset=None, *, out, root=None, max_minutes: float | None = None, resume: bool = False,
                      progress: bool = True, callbacks=(), train: dict | None = None, overwrite: bool = False):
        from .data import load_model_data
        from .train import Trainer, TrainConfig
        from .validation import make_validator

        ds = getattr(self, "_dataset", None) if dataset is None else dataset
        if ds is None or isinstance(ds, str):
            ds = load_model_data(self.config, ds, root)
            from .data.base import note_invalid_rows

            note_invalid_rows(ds)
        train_split = ds.split("train")
        if len(train_split) == 0:
            raise TrainingError(f"dataset {ds.name} has an empty training split")
        tcfg = self.config.train.to_dict()
        tcfg.update(train or {})
        if max_minutes is not None:
            tcfg["max_minutes"] = max_minutes
        tc = TrainConfig.from_dict(tcfg, where="train")
        self.config = self.config.replace(train=tc)  # config.json records the options the run used
        prepare = getattr(self.process, "prepare_dataset", None)
        if prepare is not None:  # e.g. PARD: the structural order, kept with the dataset's cache
            prepare(train_split)
        validate = make_validator(self, ds) if tc.val_every else None
        self.denoiser.requires_grad_(True)  # after an earlier fit it is the EMA copy, made without gradients
        trainer = Trainer(self.process, self.denoiser, train_split, tc, Path(out), run_config=self.config.to_dict(),
                          validate=validate, progress=progress, callbacks=callbacks)
        self.summary = trainer.fit(resume=resume, overwrite=overwrite)
        use_ema = self.config.sample.use_ema
        self.denoiser = trainer.ema_model if (use_ema and trainer.ema_model is not None) else trainer.model
        self.denoiser.eval()
        self.checkpoint = Path(self.summary["checkpoint"])
        self.trained_steps = int(self.summary["steps"])
        return self

