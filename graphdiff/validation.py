"""Validation during training: a few samples from the EMA model, scored with cheap metrics."""

from __future__ import annotations

import time


def make_validator(pipe, dataset):
    """``validate(module, step, epoch) -> dict`` for the Trainer.

    Graphs: degree and clustering MMD^2 (the preset's protocol) of ``evaluate.num_samples`` samples (default: the
    test split's size, at most 256) against the test split. Molecules: strict validity and uniqueness of 256
    samples. Sampling uses ``evaluate.steps`` steps (default 100) of the preset's sampler.
    """
    ev = pipe.config.evaluate
    ref = dataset.split(ev.reference)
    if (pipe.schema.extra or {}).get("fixed_graph"):  # images / series: moments of the values, per node
        return _fixed_graph_validator(pipe, ref, ev)
    steps = ev.steps
    molecule = pipe.schema.kind == "molecule"
    n = ev.num_samples or (256 if molecule else min(256, max(len(ref), 1)))
    ref_graphs = None if molecule else ref.to_networkx()

    def validate(module, step, epoch):
        t0 = time.perf_counter()
        tmp = pipe.with_denoiser(module)
        res = {"samples": n, "steps": steps}
        if molecule:
            smiles = tmp.sample(n, steps=steps, seed=epoch, output="smiles", progress=False)
            valid = [s for s in smiles if s is not None]  # to_smiles gives None when RDKit cannot sanitize
            res["validity_strict"] = len(valid) / n
            res["uniqueness"] = len(set(valid)) / max(len(valid), 1)
        else:
            from .metrics.mmd import graph_mmd

            graphs = tmp.sample(n, steps=steps, seed=epoch, output="networkx", progress=False)
            mmd = graph_mmd(graphs, ref_graphs, protocol=ev.protocol,
                            stats=("degree", "clustering"), bootstrap=0)
            for k, v in mmd["stats"].items():
                res[f"mmd_{k}"] = v.get("mmd2")
        res["seconds"] = round(time.perf_counter() - t0, 2)
        return res

    return validate


def _fixed_graph_validator(pipe, ref, ev):
    """Images and series: the mean absolute gap between the per-node mean and standard deviation of the samples'
    values and the reference split's (cheap, model-agnostic; the benchmarks use task metrics)."""
    n = ev.num_samples or min(256, max(len(ref), 1))
    truth = ref.batch(range(len(ref))).x

    def validate(module, step, epoch):
        t0 = time.perf_counter()
        x = pipe.with_denoiser(module).sample(n, steps=ev.steps, seed=epoch, progress=False).x
        return {"samples": n, "steps": ev.steps,
                "mean_gap": float((x.mean(0) - truth.mean(0)).abs().mean()),
                "std_gap": float((x.std(0) - truth.std(0)).abs().mean()),
                "seconds": round(time.perf_counter() - t0, 2)}

    return validate
