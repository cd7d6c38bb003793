"""Regressor guidance: a property regressor trained on the process's noisy states steers a pretrained model.

DiGress (Vignac et al., ICLR 2023, Sec. 4.3 and App. D) conditions a trained discrete model on a property ``y``
without retraining it: a regressor ``g(z_t, t)`` learns ``y`` from noisy graphs, and each reverse step's
distribution is reweighted by a first-order expansion of ``p(y | z_{t-1})`` around ``z_t``:

    p(z_{t-1} | z_t, y)  ∝  p_theta(z_{t-1} | z_t) exp(-lambda <grad_{z_t} L(g(z_t), y), z_{t-1}>),

with ``L = ||g - y||^2`` for a target value. For "more of it" we use ``L = -g`` (and ``L = g`` for "less"), the
direction form of predictor guidance (DiffusionNAG, An et al., ICLR 2024). Since ``z_{t-1}`` is one-hot per node and
per pair, the factor of category ``k`` of node ``i`` is ``exp(-lambda dL/dz_t[i, k])``; a pair's two directed
entries are one variable, so the edge gradient is symmetrised. ``lambda`` is ``scale``. Values are normalised
with the training targets' mean and standard deviation, so one ``scale`` means the same for any property.

:func:`train_regressor` (``graphdiff train-regressor``) trains :class:`~graphdiff.nn.regressor.GraphRegressor` on
the model's training data, noised by the model's own process (DiGress: uniform ``t`` in ``1..T``; DeFoG: its
training time distortion), against a target that is a graph-level column of the data (``schema.graph_features``) or
a reward computed on each training graph (:mod:`graphdiff.guidance.rewards`: ``qed``, ``logp``, ...). It keeps 5% of
the graphs out and reports their mean absolute error at random noise levels and on clean graphs. The folder it
writes holds ``regressor.json`` (process, categories, target, normalisation, sizes, figures) and
``model.safetensors``; :meth:`Regressor.load` reads no pickle.

Implemented for the discrete processes (DiGress, DeFoG), whose states are one-hot, for GDSS, whose
continuous states take the regressor's gradient in the score (:mod:`graphdiff.guidance.regressor_sde`), and for
EQGAT-diff's 3D molecules, coordinates and categories guided together, the regressor reading interatomic
distances (:mod:`graphdiff.guidance.regressor_3d`). Cost per
sample: the unguided sampler's network calls plus one regressor forward and backward per step (GDSS: per score
evaluation) (``regressor_calls``).
"""

from __future__ import annotations

import os

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..state import GraphState
from .search import GuidedSamples, counted_inference, reward_or_prediction, score_states

PROCESSES = ("defog", "digress", "gdss", "eqgat_diff")
CATEGORICAL = ("defog", "digress")  # one-hot states: DiGress's first-order guidance
FILE = "regressor.json"
DEFAULT_SIZES = {"n_layers": 3, "hidden_x": 64, "hidden_e": 32, "hidden_y": 32, "n_heads": 4, "ff_x": 128,
                 "ff_e": 64, "ff_y": 64, "extra_features": ["rrwp"], "rrwp_steps": 8}


# ---- noisy states ----------------------------------------------------------------------------------------------
def noisy_states(process, batch: GraphState, generator: torch.Generator | None = None, *, mid: bool = False):
    """A noisy state of each graph of the data ``batch`` (one-hot for DiGress / DeFoG, continuous ``(X, A)`` for
    GDSS) and its time as the network reads it (``[B]``): at a random time drawn as the process trains (DiGress:
    uniform ``t`` in ``1..T``; DeFoG: its training time distortion; GDSS: uniform in ``[eps, 1]``), or with
    ``mid=True`` at the process's mid time (DiGress ``t = T / 2``, DeFoG and GDSS ``t = 0.5``)."""
    b, dev = batch.batch_size, batch.device
    gdev = generator.device if generator is not None else dev
    if process.name in CATEGORICAL:
        x0, e0 = process.categories(batch)
    if process.name == "digress":
        t = (torch.full((b,), process.T // 2, dtype=torch.long) if mid
             else torch.randint(1, process.T + 1, (b,), generator=generator, device=gdev)).to(dev)
        px, pe = process.noise_probs(x0, e0, t)
        t_model = t.float() / process.T
    elif process.name == "defog":
        from ..processes.defog import distort

        t = (torch.full((b,), 0.5, dtype=torch.float64, device=dev) if mid else
             distort(torch.rand(b, generator=generator, dtype=torch.float64, device=gdev).to(dev),
                     process.train_distortion, "process.train_distortion"))
        px, pe = process.path_probs(x0, e0, t)
        t_model = t.float()
    elif process.name == "eqgat_diff":  # coordinates and categories, as EQGAT-diff trains
        from .regressor_3d import noisy_3d

        return noisy_3d(process, batch, generator, mid=mid)
    elif process.name == "gdss":  # the SDEs' perturbation kernels, as GDSS trains (t uniform in [eps, 1])
        clean = process.encode(batch)
        t = (torch.full((b,), 0.5, device=dev) if mid else
             (torch.rand(b, generator=generator, device=gdev) * (1.0 - process.eps) + process.eps).to(dev))
        noisy, _, _ = process.perturb(clean, t, generator)
        x, a, mask = noisy["x"], noisy["adj"], clean.mask
        return GraphState(x=x.float(), e=a.float().unsqueeze(-1), mask=mask), t.float()
    else:
        raise ConfigError(f"regressor guidance is implemented for the processes {PROCESSES}, not "
                          f"{process.name!r}")
    return process.sample_state(px, pe, batch.mask, generator, torch.float32), t_model


def regressor_view(process_name: str, state: GraphState) -> GraphState:
    """What the regressor network reads: the state itself for the one-hot processes; for GDSS's continuous
    ``(X, A)`` the adjacency as two channels ``[1 - A, A]`` (so the network's structural features see the pairs
    with ``A > 0.5`` as edges, and the gradient reaches ``A`` through both); for EQGAT-diff the bonds followed by a
    radial basis of the interatomic distances (:func:`graphdiff.guidance.regressor_3d.view_3d`)."""
    if process_name == "eqgat_diff":
        from .regressor_3d import view_3d

        return view_3d(state)
    if process_name != "gdss":
        return state
    a = state.e[..., :1]
    return GraphState(x=state.x, e=torch.cat([1.0 - a, a], -1), mask=state.mask)


def clean_time(process) -> float:
    """The network time of (nearly) clean graphs: DiGress's ``t = 1`` step, DeFoG's ``t = 1``, GDSS's ``eps``,
    EQGAT-diff's ``t = 0``."""
    if process.name == "gdss":
        return float(process.eps)
    if process.name == "eqgat_diff":
        return 0.0
    return 1.0 / process.T if process.name == "digress" else 1.0


def current_time(process, times, k: int) -> float:
    """The network time of the state entering reverse step ``k`` on the grid ``times``."""
    return times[k] / process.T if process.name in ("digress", "eqgat_diff") else float(times[k])


# ---- the trained regressor -------------------------------------------------------------------------------------
@dataclass
class Regressor:
    """A trained noisy-graph regressor and what it was trained for (see the module docstring)."""

    net: torch.nn.Module
    target: str
    mean: float
    std: float
    process: str
    node_categories: tuple[str, ...]
    edge_categories: tuple[str, ...]
    sizes: dict
    info: dict = field(default_factory=dict)

    def normalised(self, state: GraphState, t: torch.Tensor) -> torch.Tensor:
        """The prediction in normalised units (``(y - mean) / std``), ``[B]``, for a state of the process."""
        return self.net(regressor_view(self.process, state), t)[:, 0]

    @torch.no_grad()
    def predict(self, state: GraphState, t: float | torch.Tensor) -> np.ndarray:
        """The predicted property of each graph of the process ``state`` at network time ``t``."""
        tt = torch.as_tensor(t, dtype=torch.float32, device=state.device).expand(state.batch_size)
        return (self.normalised(state, tt) * self.std + self.mean).double().cpu().numpy()

    def check(self, pipe) -> None:
        """One-line error unless this regressor was trained for ``pipe``'s process and categories."""
        name = pipe.process.name
        if name != self.process:
            raise ConfigError(f"regressor for {self.target!r} was trained on the {self.process} process; this model "
                              f"is {name}")
        ours = (tuple(pipe.schema.node_categories), tuple(pipe.schema.edge_categories))
        if ours != (self.node_categories, self.edge_categories):
            raise ConfigError(f"regressor for {self.target!r} was trained for node categories "
                              f"{list(self.node_categories)} and edges {list(self.edge_categories)}; this model has "
                              f"{list(ours[0])} and {list(ours[1])}")

    @staticmethod
    def check_folder(folder) -> Path:
        """``folder`` as a place for a regressor: refused when it holds a model or a training checkpoint
        (``config.json``), whose ``model.safetensors`` the regressor's would replace."""
        folder = Path(folder)
        if (folder / "config.json").is_file():
            raise ConfigError(f"{folder} holds a model checkpoint (config.json); a regressor saved there would "
                              "replace its model.safetensors: choose another folder")
        return folder

    def save(self, folder) -> Path:
        from safetensors.torch import save_file

        folder = self.check_folder(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"target": self.target, "mean": self.mean, "std": self.std, "process": self.process,
                "node_categories": list(self.node_categories), "edge_categories": list(self.edge_categories),
                "sizes": self.sizes, "info": self.info}
        save_file({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()},
                  str(folder / "model.safetensors"))
        (folder / FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder) -> "Regressor":
        """Read a folder written by :meth:`save` (JSON and safetensors only)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from ..nn.regressor import GraphRegressor

        folder = Path(folder)
        if not (folder / FILE).is_file():
            raise ConfigError(f"{folder}: not a regressor folder (no {FILE}; make one with graphdiff train-regressor)")
        try:
            meta = json.loads((folder / FILE).read_text(encoding="utf-8"))
            sizes = dict(meta["sizes"])
            net = GraphRegressor(**sizes)
            net.load_state_dict(load_file(str(folder / "model.safetensors")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{folder}: cannot read the regressor ({msg})") from None
        net.eval()
        return cls(net=net, target=meta["target"], mean=float(meta["mean"]), std=float(meta["std"]),
                   process=meta["process"], node_categories=tuple(meta["node_categories"]),
                   edge_categories=tuple(meta["edge_categories"]), sizes=sizes, info=meta.get("info", {}))


# ---- training --------------------------------------------------------------------------------------------------
def target_values(pipe, split, target: str, *, chunk: int = 1024, reward_args: dict | None = None,
                  scorer=None, columns=None, data=None) -> np.ndarray:
    """One value per graph of ``split``: ``scorer(pipe, batch)`` when given (a score the model computes, e.g.
    :func:`graphdiff.guidance.minority.minority_scores`), else its graph-level column ``target`` (``columns``: the
    data's graph-level columns, default the model's) or the reward ``target`` of the decoded graph (an invalid
    molecule gets the reward's invalid value). ``data`` (the dataset the split comes from) only words the error for
    a target that is none of these."""
    if scorer is not None:
        return np.concatenate([np.asarray(scorer(pipe, split.batch(range(lo, min(len(split), lo + chunk)))),
                                          dtype=np.float64) for lo in range(0, len(split), chunk)])
    features = list(pipe.schema.graph_features if columns is None else columns)
    if target in features:
        col = features.index(target)
        return np.concatenate([split.batch(range(lo, min(len(split), lo + chunk))).y[:, col].double().numpy()
                               for lo in range(0, len(split), chunk)])
    from .rewards import REWARDS, get_reward

    if ":" not in target and target not in REWARDS:
        props = tuple(getattr(data, "property_names", ()))
        known = [*features, *props, *REWARDS]
        from ..checks import suggest

        raise ConfigError(f"target {target!r} is not a graph-level column of the data, a property of it or a reward"
                          f"{suggest(target, known)}; choose from {', '.join(known)} (or module:function)")
    reward = get_reward(target, **(reward_args or {}))
    if reward.kind == "molecule" and pipe.schema.kind != "molecule":
        raise ConfigError(f"target {target!r} scores molecules; this model generates {pipe.schema.kind}s (a graph "
                          f"reward such as n_nodes, or a graph-level column of the data, fits it)")
    out = []
    for lo in range(0, len(split), chunk):
        batch = split.batch(range(lo, min(len(split), lo + chunk)))
        out.append(score_states(pipe, batch, reward)[1])
    return np.concatenate(out)


def _subset(split, idx):
    class _Sub:
        def __len__(self):
            return len(idx)

        def batch(self, ids):
            return split.batch([int(idx[i]) for i in ids])

    return _Sub()


def train_regressor(pipe, target: str, *, dataset=None, root=None, out=None, max_steps: int | None = None,
                    max_minutes: float | None = None, batch_size: int = 128, lr: float = 3e-4, limit: int | None = None,
                    sizes: dict | None = None, seed: int = 0, reward_args: dict | None = None,
                    scorer=None, progress: bool = False, log=print) -> Regressor:
    """Train a noisy-graph regressor of ``target`` for ``pipe`` (see the module docstring) and save it to ``out``.

    Args:
        target: a graph-level column of the data, a property the data keeps beside its graphs (QM9-3D's DFT
            properties, ``gap``, ``mu``, ...: in their own units) or a reward name (``qed``, ``logp``, ``n_nodes``,
            ...).
        dataset: training data (default the model's own ``config.dataset`` with its ``dataset_options``), aligned
            to the model's categories.
        max_steps / max_minutes: the budget (at least one).
        limit: use at most this many training graphs (a seeded subset).
        scorer: ``scorer(pipe, batch) -> values``, the target computed by the model itself (``target`` names it).
        sizes: network sizes (:data:`DEFAULT_SIZES` overridden).
    """
    from ..data import load_model_data
    from ..data.base import dataset_label, train_schema
    from ..finetune import AlignedSplit, align
    from ..nn.regressor import GraphRegressor

    process = pipe.process
    if process.name not in PROCESSES:
        raise ConfigError(f"regressor guidance is implemented for the processes {PROCESSES}, not "
                          f"{process.name!r}")
    if max_steps is None and max_minutes is None:
        raise ConfigError("train-regressor: give a budget (--max-steps or --max-minutes)")
    if out is not None:
        Regressor.check_folder(out)  # before training, not after
    for what, v in (("max_steps", max_steps), ("batch_size", batch_size), ("limit", limit)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ConfigError(f"train-regressor: {what} must be a positive integer, got {v!r}")
    if max_minutes is not None and not float(max_minutes) > 0:
        raise ConfigError(f"train-regressor: max_minutes must be > 0, got {max_minutes!r}")
    if dataset is not None and not isinstance(dataset, (str, os.PathLike)):  # a loaded dataset (a str has .split too)
        ds = dataset
    else:
        ds = load_model_data(pipe.config, dataset, root)
    label = dataset_label(ds)
    a = align(pipe.schema, train_schema(ds), where=f"train-regressor on {label}")
    if a.new_nodes or a.new_edges:
        raise DataError(f"train-regressor: {label} has categories the model does not know: "
                        f"{list(a.new_nodes) + list(a.new_edges)}")
    split = AlignedSplit(ds.split("train"), a)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(split))
    if limit is not None:
        idx = idx[:limit]
    if len(idx) < 20:
        raise DataError(f"train-regressor: {label} has {len(idx)} training graphs; need at least 20")
    t0 = time.perf_counter()
    train = ds.split("train")
    if scorer is None and target in getattr(train, "property_names", ()):  # QM9-3D's DFT properties, raw units
        values = np.asarray(train.property_values(target), dtype=np.float64)[idx]
        unit = (getattr(train, "property_units", None) or {}).get(target)
        source = "property of the data" + (f", in {unit}" if unit else "")
    else:
        values = target_values(pipe, _subset(split, idx), target, reward_args=reward_args, scorer=scorer,
                               columns=train_schema(ds).graph_features, data=train)
        source = ("the model's own score" if scorer is not None else
                  "graph column of the data (its stored scale)" if target in train_schema(ds).graph_features
                  else "reward")
    finite = np.isfinite(values)
    if finite.sum() < 20:
        raise DataError(f"train-regressor: target {target!r} is finite on {int(finite.sum())} of {len(values)} "
                        f"graphs of {label}")
    idx, values = idx[finite], values[finite]
    n_val = max(10, len(idx) // 20)
    val_idx, val_y = idx[:n_val], values[:n_val]
    tr_idx, tr_y = idx[n_val:], values[n_val:]
    mean, std = float(tr_y.mean()), float(tr_y.std() or 1.0)
    log(f"train-regressor: {target} on {len(tr_idx)} graphs of {label} (held out {n_val}), mean {mean:.4g}, "
        f"std {std:.4g}; targets took {time.perf_counter() - t0:.0f} s")

    sz = {**DEFAULT_SIZES, **(sizes or {})}
    if process.name == "gdss":  # continuous X and the two-channel view of A (regressor_view)
        sz.update(node_dim=process.x_dim, edge_dim=2, max_nodes=pipe.schema.max_nodes, n_targets=1)
    elif process.name == "eqgat_diff":  # element | charge one-hots; bonds and the distances' radial basis
        from .regressor_3d import N_RBF

        sz = {**DEFAULT_SIZES, "extra_features": [], **(sizes or {})}  # the structural features read bonds only
        sz.update(node_dim=process.ka + process.kc, edge_dim=process.ke + N_RBF, max_nodes=pipe.schema.max_nodes,
                  n_targets=1)
    else:
        sz.update(node_dim=process.node_states, edge_dim=process.ke, max_nodes=pipe.schema.max_nodes, n_targets=1)
    torch.manual_seed(seed)
    net = GraphRegressor(**sz)
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    yn = torch.as_tensor((tr_y - mean) / std, dtype=torch.float32)
    start, step, losses = time.perf_counter(), 0, []
    net.train()
    while True:
        if max_steps is not None and step >= max_steps:
            break
        if max_minutes is not None and time.perf_counter() - start >= 60 * float(max_minutes):
            break
        pick = torch.randint(0, len(tr_idx), (min(batch_size, len(tr_idx)),), generator=gen)
        batch = split.batch([int(tr_idx[i]) for i in pick])
        noisy, t = noisy_states(process, batch, gen)
        loss = torch.nn.functional.mse_loss(net(regressor_view(process.name, noisy), t)[:, 0], yn[pick])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if progress and step % 50 == 0:
            log(f"train-regressor: step {step}, loss {np.mean(losses[-50:]):.4f}")
    seconds = time.perf_counter() - start
    net.eval()
    reg = Regressor(net=net, target=target, mean=mean, std=std, process=process.name,
                    node_categories=tuple(pipe.schema.node_categories),
                    edge_categories=tuple(pipe.schema.edge_categories),
                    sizes={k: (list(v) if isinstance(v, tuple) else v) for k, v in sz.items()})
    reg.info = {"data": ds.name, "target_source": source, "train_graphs": int(len(tr_idx)),
                "held_out_graphs": int(n_val), "steps": step,
                "seconds": round(seconds, 1), "batch_size": batch_size, "lr": lr, "seed": seed,
                "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
                **held_out_errors(reg, process, _subset(split, val_idx), val_y, seed)}
    log(f"train-regressor: {step} steps in {seconds:.0f} s; held-out MAE {reg.info['held_out_mae_noisy']:.4g} "
        f"(noisy), {reg.info['held_out_mae_clean']:.4g} (clean); predicting the mean: "
        f"{reg.info['held_out_mae_mean']:.4g}")
    if out is not None:
        reg.save(out)
    return reg


@torch.no_grad()
def held_out_errors(reg: Regressor, process, split, y: np.ndarray, seed: int = 0) -> dict:
    """Mean absolute error on held-out graphs at the training noise levels, on clean graphs, and of always
    predicting the training mean."""
    gen = torch.Generator().manual_seed(seed + 1)
    noisy_err, clean_err = [], []
    for lo in range(0, len(split), 256):
        ids = list(range(lo, min(len(split), lo + 256)))
        batch = split.batch(ids)
        noisy, t = noisy_states(process, batch, gen)
        noisy_err.append(np.abs(reg.predict(noisy, t) - y[ids]))
        clean = process.encode(batch)
        clean_err.append(np.abs(reg.predict(clean, clean_time(process)) - y[ids]))
    return {"held_out_mae_noisy": float(np.concatenate(noisy_err).mean()),
            "held_out_mae_clean": float(np.concatenate(clean_err).mean()),
            "held_out_mae_mean": float(np.abs(y - reg.mean).mean())}


# ---- guided sampling -------------------------------------------------------------------------------------------
def regressor_guidance(pipe, n: int, reward=None, *, regressor, target: float | None = None,
                       direction: str = "max", scale: float = 1.0, steps: int | None = None, seed: int | None = None,
                       batch_size: int | None = None, progress: bool = False, **knobs) -> GuidedSamples:
    """Sample ``n`` graphs with regressor guidance (see the module docstring).

    Args:
        reward: optional, to score the returned samples (their ``rewards``); without one the rewards are the
            regressor's predictions on the clean samples.
        regressor: a :class:`Regressor` or its folder.
        target: a target value of the property (the loss ``(g - target)^2``); ``None`` uses ``direction``.
        direction: ``"max"`` or ``"min"`` when no target is given.
        scale: the guidance strength ``lambda`` (> 0).
        knobs: the sampler's own knobs (``time_distortion``, ``eta``, ``omega``, ``cond``, ``guidance``).
    """
    from ..progress import maybe
    from ..samplers.noise import SampleNoise
    from .steps import _transition, guidance_gradients, reweighted, search_setup

    reg = regressor if isinstance(regressor, Regressor) else Regressor.load(regressor)
    reg.check(pipe)
    if not float(scale) > 0:
        raise ConfigError(f"regressor guidance: scale must be > 0, got {scale!r}")
    if target is None and direction not in ("max", "min"):
        raise ConfigError(f"regressor guidance: direction must be 'max' or 'min', got {direction!r}")
    if pipe.process.name == "gdss":  # continuous: the regressor's gradient added to the scores
        from .regressor_sde import sde_regressor_guidance

        return sde_regressor_guidance(pipe, n, reward, reg=reg, target=target, direction=direction, scale=scale,
                                      steps=steps, seed=seed, batch_size=batch_size, progress=progress, **knobs)
    process, denoiser = pipe.process, pipe.denoiser
    steps, seed, knobs, times, _ = search_setup(pipe, n, steps, seed, knobs, "regressor guidance")
    device = pipe.device
    reg.net.to(device).eval()
    goal = None if target is None else (float(target) - reg.mean) / reg.std
    sign = 1.0 if direction == "min" else -1.0
    noise = SampleNoise.for_run(seed, 0, n, device)
    sizes = noise.node_counts(pipe.schema.node_count_probs())
    chunk = int(batch_size or pipe.config.sample.batch_size or 256)
    states = []
    with counted_inference(denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            sub = noise.subset(range(lo, hi))
            state = process.prior(sizes[lo:hi], generator=sub)
            if process.name == "eqgat_diff":  # coordinates by the posterior mean, categories by reweighting
                from .regressor_3d import ancestral_3d_guided

                state = ancestral_3d_guided(process, denoiser, state, reg=reg, goal=goal, sign=sign,
                                            scale=float(scale), steps=steps, noise=sub, cond=knobs.get("cond"),
                                            guidance=knobs.get("guidance", 0.0), progress=progress)
                states.append(process.decode(state))
                continue
            log_px = None
            for k in maybe(range(steps), progress, "regressor"):
                (px, pe), log_px, _ = _transition(process, denoiser, state, k, times, steps, knobs)
                t = torch.full((hi - lo,), current_time(process, times, k), device=device)
                gx, ge, _ = guidance_gradients(reg, state, t, goal, sign)
                state = process.sample_state(reweighted(px, gx, float(scale)), reweighted(pe, ge, float(scale)),
                                             state.mask, sub, state.x.dtype)
            states.append(process.decode(process.fill_masks(state, log_px)))
    out = GraphState.cat(states)
    samples, values = reward_or_prediction(pipe, out, reward, reg, clean_time(process))
    cost = {"network_calls_per_sample": counter.graph_calls / n, "regressor_calls_per_sample": float(steps),
            "reward_calls_per_sample": 1.0 if reward is not None else 0.0, "scale": float(scale),
            "target": target if target is not None else direction}
    return GuidedSamples(state=out, rewards=values, cost=cost, samples=samples)


__all__ = ["Regressor", "train_regressor", "regressor_guidance", "noisy_states", "held_out_errors", "PROCESSES"]
