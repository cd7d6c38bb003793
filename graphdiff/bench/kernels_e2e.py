"""End-to-end rows of the ``kernels`` suite: training graphs/s of a whole denoiser with the fused kernels against
the torch reference (issue goal: DeFoG / DiGress on SBM, >= 2x with the kernels on a GPU).

For each preset (default ``defog-sbm`` and ``digress-sbm``, the authors' network widths) on the generated SPECTRE
SBM graphs (``synth_sbm``: 40 to 200 nodes, no download), each precision (float32, and bf16 autocast as
``train.amp``) and each kernel mode (``reference``, ``triton``): the same initial weights, the same batches, the
same loss noise; the mean time of ``e2e_steps`` optimizer steps after two untimed ones, graphs/s, peak memory on a
GPU, and the first step's loss (equal across modes up to rounding: a check that both paths train the same model).
"""

from __future__ import annotations

import time

__all__ = ["end_to_end_rows"]


def _peak_reset(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _one(torch, preset: str, mode: str, amp: bool, settings: dict, device, overrides: dict | None) -> dict:
    from ..pipeline import GraphDiffusionPipeline
    from ..train.amp import AutocastForward
    from .timing import time_train_steps

    over = {"model": {"kernels": mode}, "train": {"batch_size": int(settings["e2e_batch"])}}
    for section, values in (overrides or {}).items():
        over[section] = {**over.get(section, {}), **values}
    pipe = GraphDiffusionPipeline.from_preset(preset, settings["e2e_dataset"], overrides=over)  # same weights per mode
    pipe.denoiser.to(device)
    module = AutocastForward(pipe.denoiser, device.type) if amp else pipe.denoiser
    ds = pipe._dataset.split("train")
    first = pipe.process.loss(module, ds.batch(list(range(min(4, len(ds))))).to(device),
                              generator=torch.Generator(device=device).manual_seed(0)).mean()
    _peak_reset(torch, device)
    t = time.perf_counter()
    timing = time_train_steps(pipe, ds, int(settings["e2e_batch"]), int(settings["e2e_steps"]), module=module,
                              device=device)
    row = {"kernel": "end_to_end", "variant": preset, "route": mode, "dtype": "bf16 autocast" if amp else "float32",
           "n": timing["mean_padded_nodes"], "batch": timing["batch_size"], "graphs_per_s": timing["graphs_per_s"],
           "steps_per_s": timing["steps_per_s"], "timed_steps": timing["timed_steps"],
           "first_loss": round(float(first.detach()), 6), "seconds": round(time.perf_counter() - t, 1),
           "parameters": sum(p.numel() for p in pipe.denoiser.parameters())}
    if device.type == "cuda":
        row["train_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def end_to_end_rows(torch, settings: dict, device, *, modes=("reference", "triton"), overrides: dict | None = None,
                    progress: bool = False):
    """Yield one row per (preset, precision, mode); a mode that fails (no compiler, out of memory) gives a row with
    ``error`` and the others still run. ``overrides``: preset overrides for every row (tests use a tiny network)."""
    from .record import error_text

    for preset in settings["e2e_presets"]:
        for amp in settings["e2e_amp"]:
            for mode in modes:
                try:
                    row = _one(torch, preset, mode, bool(amp), settings, device, overrides)
                except Exception as exc:  # reported in the table; the other modes still run
                    row = {"kernel": "end_to_end", "variant": preset, "route": mode,
                           "dtype": "bf16 autocast" if amp else "float32", "error": error_text(exc)}
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                if progress:
                    print(f"  end_to_end {preset} {row['dtype']} {mode}: "
                          + (row.get("error") or f"{row['graphs_per_s']} graphs/s"), flush=True)
                yield row


def markdown_lines(rows: list[dict]) -> list[str]:
    """The end-to-end table: graphs/s per preset, precision and mode, with the speed-up over the reference."""
    if not rows:
        return []
    lines = ["## end to end (training)", "",
             "| preset | precision | kernels | mean padded N | batch | graphs/s | x ref | train peak MB | first loss |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['dtype']} | {r['route']} | {r['error']} | | | | | |")
            continue
        ref = next((x for x in rows if x["variant"] == r["variant"] and x["dtype"] == r["dtype"]
                    and x["route"] == "reference" and "error" not in x), {})
        ratio = f"{r['graphs_per_s'] / ref['graphs_per_s']:.2f}" if ref.get("graphs_per_s") else "-"
        lines.append(f"| {r['variant']} | {r['dtype']} | {r['route']} | {r['n']} | {r['batch']} | {r['graphs_per_s']} "
                     f"| {ratio} | {r.get('train_peak_mb', '-')} | {r['first_loss']} |")
    return lines + ["", "Same initial weights, batches and loss noise in every mode; graphs/s is the mean of the "
                        "timed optimizer steps (each includes assembling its batch).", ""]
