"""``graphdiff bench run images``: the grid-graph denoiser against a CNN of equal parameters and training time,
PFGM++ (D = 128, 2048) against EDM at equal steps, TSDiff self-guided inpainting against mean imputation, and
class accuracy of a class-conditional model, on scikit-learn's 8x8 digits.

Quality is the Frechet distance to the test split in the feature space of a small classifier trained on the train
split (:mod:`graphdiff.metrics.images`; the classifier's test accuracy and the train-vs-test floor are reported).
Each entry trains for the same wall-clock budget; throughput is measured on the same machine in the same run.
``--model DIR`` scores the entries an earlier run trained (``DIR/runs/<entry>`` or ``DIR/<entry>``: the ``--out`` of
that run, or folders of the entries' names) instead of training them; their training steps and seconds come from
each run's ``log.jsonl``.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import merge
from ..errors import ConfigError
from .record import new_results, write_results


def match_width(model: dict, x_dim: int, max_nodes: int, target: int) -> dict:
    """``model`` with the ``hidden`` width whose parameter count is closest to ``target``."""
    from ..nn import DENOISERS

    spec = {k: v for k, v in model.items() if k != "name"}
    cls = DENOISERS[model["name"]]
    best = min(range(8, 257, 2), key=lambda h: abs(
        sum(p.numel() for p in cls(**{**spec, "hidden": h}, x_dim=x_dim, max_nodes=max_nodes).parameters()) - target))
    return {**model, "hidden": best}


def _images(pipe, n: int, steps: int, seed: int = 0, cond=None, guidance=None) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    s = pipe.sample(n, steps=steps, seed=seed, progress=False, batch_size=256, cond=cond, guidance=guidance)
    return s.x.clamp(-1, 1), time.perf_counter() - t0  # intensities live in [-1, 1] (ImageGrid.from_state clamps)


def _load(model: Path, label: str):
    """The entry ``label`` of an earlier run (module docstring) and its training record from ``log.jsonl``."""
    import json

    from ..pipeline import GraphDiffusionPipeline

    src = next((d for d in (model / "runs" / label, model / label) if d.is_dir()), None)
    if src is None:
        raise ConfigError(f"--model {model}: no folder runs/{label} or {label} for entry {label!r}; give the --out "
                          f"of an earlier bench run images (or --only the entries it holds)")
    pipe = GraphDiffusionPipeline.from_pretrained(src)
    steps, secs = int(pipe.trained_steps), None
    log = src / "log.jsonl"
    if log.is_file():
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip().startswith("{")]
        timed = [x for x in lines if "seconds" in x and "step" in x]
        if timed:
            secs = float(timed[-1]["seconds"])
    return pipe, {"train_steps": steps, "train_seconds": secs,
                  "train_steps_per_s": round(steps / secs, 3) if secs else None, "loaded_from": str(src)}


def _train(preset: str, out: Path, overrides: dict, minutes: float, root, progress: bool):
    from ..pipeline import GraphDiffusionPipeline

    t0 = time.perf_counter()
    pipe = GraphDiffusionPipeline.fit(None, preset=preset, out=out, overrides=overrides, max_minutes=minutes,
                                      root=root, progress=progress, overwrite=True)
    secs = time.perf_counter() - t0
    steps = int(pipe.summary["steps"])
    return pipe, {"train_steps": steps, "train_seconds": round(secs, 1), "train_steps_per_s": round(steps / secs, 3),
                  "final_loss": pipe.summary.get("loss")}


ENTRIES = (  # label, preset, overrides
    ("grid-edm", "edm-digits", {}),
    ("cnn-edm", "edm-digits_cnn", {}),
    ("grid-pfgm-D128", "pfgm-digits", {"process": {"D": 128}}),
    ("grid-pfgm-D2048", "pfgm-digits", {"process": {"D": 2048}}),
    ("grid-edm-cond", "edm-digits_cond", {}),
)


def run_images(suite, *, out, minutes: float | None = None, samples: int | None = None,
               overrides: dict | None = None, model=None, root=None, only=None, progress: bool = False,
               command: str | None = None, steps=None, **_ignored) -> dict:
    """Train and score every entry (module docstring); writes ``results.json`` and ``results.md`` in ``out``."""
    from ..data.images import Digits
    from ..guidance.self_guidance import self_guidance
    from ..metrics.images import (class_accuracy, classifier_fd, classifier_fd_floor, digits_classifier,
                                  inpainting_mse, mean_imputation)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    minutes = 1.0 if minutes is None else float(minutes)
    steps_list = list(steps or [18])
    labels = [e[0] for e in ENTRIES]
    for o in only or ():
        if o not in labels:
            raise ConfigError(f"--only {o!r} is not an entry of suite images; entries: {', '.join(labels)}")
    t_start = time.time()
    ds = Digits(root)
    grid = ds.grid
    test_x = grid.to_state(torch.from_numpy(ds.split("test").arrays()[0])).x
    train_x = grid.to_state(torch.from_numpy(ds.split("train").arrays()[0])).x
    n = samples or len(test_x)
    clf = digits_classifier(seed=0, root=root)
    floor = classifier_fd_floor(train_x, test_x, clf, n)
    settings = {"minutes_per_entry": minutes, "samples": n, "steps": steps_list, "overrides": overrides or {},
                "only": list(only or []), "model": None if model is None else str(model)}
    results = new_results(suite, command or "graphdiff bench run images", settings,
                          classifier={"test_accuracy": clf.accuracy, "seed": clf.seed, "train_size": clf.train_size,
                                      "test_size": clf.test_size, "fd_train_vs_test": floor["fd"]})
    grid_params, models = None, {}
    for label, preset, over in ENTRIES:
        if only and label not in only:
            continue
        print(f"== images: {label}", flush=True)
        over = merge(merge(over, overrides or {}), {"train": {"ckpt_every": 0}})
        if label.startswith("cnn") and grid_params is not None:  # equal parameters: the CNN's width is matched
            from ..config import load_preset

            spec = {k: v for k, v in load_preset(preset, over).model.items() if k not in ("x_dim", "max_nodes")}
            over = merge(over, {"model": match_width(spec, grid.channels, grid.n_nodes, grid_params)})
        if model is not None:
            pipe, tr = _load(Path(model), label)
        else:
            pipe, tr = _train(preset, out / "runs" / label, over, minutes, root, progress)
        params = sum(p.numel() for p in pipe.denoiser.parameters())
        if label == "grid-edm":
            grid_params = params
        row = {"entry": label, "preset": preset, "process": pipe.process.name,
               "D": getattr(pipe.process, "D", None), "model": pipe.config.model["name"], "parameters": params,
               **tr, "evals": []}
        for st in steps_list:
            cond = None
            if pipe.process.cond_dim:
                want = np.arange(n) % 10
                cond = torch.nn.functional.one_hot(torch.as_tensor(want), 10).float()
            x, secs = _images(pipe, n, st, cond=cond, guidance=1.0 if cond is not None else None)
            calls = 2 * st - 1 if pipe.config.sample.sampler == "heun" else st
            ev = {"steps": st, "network_calls_per_image": calls * (2 if cond is not None else 1),
                  "sample_seconds": round(secs, 2), "images_per_s": round(n / secs, 2), **classifier_fd(x, test_x, clf)}
            if cond is not None:
                ev["class_accuracy"] = class_accuracy(x, want, clf)
                ev["cfg_guidance"] = 1.0
            row["evals"].append(ev)
        if label == "grid-edm":
            row["inpainting"] = _inpainting(pipe, test_x, train_x, steps_list[0], self_guidance, inpainting_mse,
                                            mean_imputation)
            from ..adapters import save_image_grid

            x, _ = _images(pipe, 64, steps_list[0], seed=1)
            save_image_grid(grid.from_state(replace(grid.template(64), x=x)), out / "grid-edm.png",
                            value_range=grid.value_range)
        results["rows"].append(row)
        models[label] = pipe.denoiser
        write_results(out, results, markdown(results))
    if "grid-edm" in models and "cnn-edm" in models:
        tp = throughput({k: models[k] for k in ("grid-edm", "cnn-edm")}, grid.to_state(test_x[:64].new_zeros(
            64, grid.channels, grid.height, grid.width)))
        results["throughput"] = {"batch": 64, "reps": 5, "seconds": tp,
                                 "grid_over_cnn_forward": tp["grid-edm"]["forward"] / tp["cnn-edm"]["forward"],
                                 "grid_over_cnn_train": tp["grid-edm"]["train"] / tp["cnn-edm"]["train"]}
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["wall_minutes"] = round((time.time() - t_start) / 60, 2)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(out, results, markdown(results))
    return results


def throughput(models: dict, state, reps: int = 5) -> dict:
    """Median seconds of one forward (sampling) and one forward + backward (training) pass of each denoiser on the
    same batch, measured interleaved so that a changing machine load hits every model alike."""
    import copy

    models = {k: copy.deepcopy(m).requires_grad_(True) for k, m in models.items()}  # EMA copies may be frozen
    times = {k: {"forward": [], "train": []} for k in models}
    t = torch.zeros(state.batch_size)
    for _ in range(reps):
        for k, m in models.items():
            m.eval()
            with torch.no_grad():
                t0 = time.perf_counter()
                m(state, t)
                times[k]["forward"].append(time.perf_counter() - t0)
            m.train()
            t0 = time.perf_counter()
            m(state, t).x.pow(2).mean().backward()
            times[k]["train"].append(time.perf_counter() - t0)
            m.zero_grad(set_to_none=True)
            m.eval()
    return {k: {p: float(np.median(v)) for p, v in d.items()} for k, d in times.items()}


def _inpainting(pipe, test_x, train_x, steps, self_guidance, inpainting_mse, mean_imputation, n: int = 32) -> dict:
    """Bottom half of ``n`` test digits hidden: mean imputation, unguided samples, self-guided samples (MSE of one
    sample and of the mean of 2), replacement alone and with self-guidance, refinement of the mean imputation."""
    truth = test_x[:n]
    known = torch.ones_like(truth, dtype=torch.bool)
    known[:, 32:] = False  # rows 4..7 of the 8 x 8 grid
    base = mean_imputation(train_x, truth)
    res = {"hidden": "bottom 4 rows", "images": n, "steps": steps,
           "mean_imputation": inpainting_mse(base, truth, known)}
    for scale, swap in ((0.0, False), (1.0, False), (2.0, False), (0.0, True), (1.0, True)):
        draws = []
        for rep in range(2):
            g = self_guidance(pipe, n, observed=truth, observed_mask=known, scale=scale, steps=steps, seed=rep,
                              replace=swap)
            draws.append(g.state.x.clamp(-1, 1))
        key = ("replacement" if swap else "unguided") if scale == 0 else f"self_mse_scale{scale:g}"
        key += "_replacement" if swap and scale else ""
        res[key] = inpainting_mse(draws[0], truth, known)
        res[key + "_mean_of_2"] = inpainting_mse(torch.stack(draws).mean(0), truth, known)
    ref = self_guidance(pipe, n, observed=truth, observed_mask=known, base=base)
    res["refined_mean_imputation"] = inpainting_mse(ref.state.x.clamp(-1, 1), truth, known)
    return res


def markdown(results: dict) -> str:
    c = results["classifier"]
    lines = [f"# bench images ({results['started']})", "", results["description"], "",
             f"command: `{results['command']}`", "",
             f"Frechet distance in the feature space of an MLP classifier (test accuracy {c['test_accuracy']:.3f}, "
             f"seed {c['seed']}); floor (train images vs test): {c['fd_train_vs_test']:.1f}.", "",
             "| entry | process | D | model | params | train steps | steps/s | sampling steps | net calls | images/s "
             "| FD | class acc |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        for ev in r["evals"]:
            lines.append(f"| {r['entry']} | {r['process']} | {r['D'] or 'inf'} | {r['model']} | {r['parameters']:,} | "
                         f"{r['train_steps']} | {r['train_steps_per_s'] or '-'} | {ev['steps']} | "
                         f"{ev['network_calls_per_image']} | {ev['images_per_s']} | {ev['fd']:.1f} | "
                         f"{ev.get('class_accuracy', '')} |")
    rows = {r["entry"]: r for r in results["rows"]}
    if "grid-edm" in rows and "cnn-edm" in rows:
        g, k = rows["grid-edm"], rows["cnn-edm"]
        train = (f"{g['train_steps_per_s'] / k['train_steps_per_s']:.2f}" if g["train_steps_per_s"]
                 and k["train_steps_per_s"] else "-")
        lines += ["", f"grid / CNN: FD ratio {g['evals'][0]['fd'] / k['evals'][0]['fd']:.2f}, training throughput "
                  f"ratio {train}, sampling throughput ratio "
                  f"{g['evals'][0]['images_per_s'] / k['evals'][0]['images_per_s']:.2f} (parameters "
                  f"{g['parameters']:,} vs {k['parameters']:,})"]
    if "grid-edm" in rows and "inpainting" in rows["grid-edm"]:
        inp = rows["grid-edm"]["inpainting"]
        lines += ["", f"## Inpainting ({inp['hidden']} hidden, {inp['images']} test digits, MSE on hidden pixels in "
                  "[-1, 1] units)", "", "| completion | MSE (one sample) | MSE (mean of 2) |", "|---|---|---|",
                  f"| mean imputation | {inp['mean_imputation']:.4f} | |"]
        for key in ("unguided", "self_mse_scale1", "self_mse_scale2", "replacement", "self_mse_scale1_replacement"):
            if key in inp:  # results of runs before replacement have no replacement rows
                lines.append(f"| {key} | {inp[key]:.4f} | {inp[key + '_mean_of_2']:.4f} |")
        lines.append(f"| refined mean imputation | {inp['refined_mean_imputation']:.4f} | |")
    if "throughput" in results:
        tp = results["throughput"]
        lines += ["", f"Throughput, interleaved timing (batch {tp['batch']}, median of {tp['reps']}): grid forward "
                  f"{tp['seconds']['grid-edm']['forward'] * 1e3:.1f} ms vs CNN "
                  f"{tp['seconds']['cnn-edm']['forward'] * 1e3:.1f} ms (grid / CNN time "
                  f"{tp['grid_over_cnn_forward']:.2f}); forward + backward "
                  f"{tp['seconds']['grid-edm']['train'] * 1e3:.1f} ms vs "
                  f"{tp['seconds']['cnn-edm']['train'] * 1e3:.1f} ms ({tp['grid_over_cnn_train']:.2f})"]
    m = results["machine"]
    lines += ["", f"machine: {m['device']}, {m['torch_threads']} torch threads, load average at start "
              f"{m['load_average']}" + (f", at end {results['load_average_at_end']}" if "load_average_at_end" in
                                         results else "")]
    return "\n".join(lines) + "\n"


__all__ = ["run_images", "match_width", "markdown"]
