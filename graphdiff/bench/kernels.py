"""The ``kernels`` suite (``graphdiff bench run kernels``): time and memory of each fused kernel against the torch
reference, ``torch.compile`` of the reference and PyTorch's / PyG's built-in routes, per graph size.

For every kernel, size ``N`` (nodes per graph slot), dtype and route (:mod:`graphdiff.bench.kernel_routes`) it
records the median wall time of a forward pass (sampling) and of a forward plus backward pass (a training step's
share), memory, and the largest difference of the outputs from the reference. On a GPU: the peak memory allocated
above the inputs (forward alone and training) and the achieved bandwidth of the forward pass (the bytes the kernel
must move at least, over the time) as a fraction of the device's peak. On a CPU the Triton routes are not run (they
need CUDA; Triton's interpreter is for tests) and memory is the activation memory saved for the backward pass,
outside the inputs, counted by ``torch.autograd.graph.saved_tensors_hooks``. Settings come from ``--set``:
``sizes``, ``batch``, ``heads``, ``hidden``, ``edge_hidden``, ``features``, ``repeats``, ``dtypes`` (``float32``,
``bfloat16``, ``tf32``: float32 tensors with TF32 matrix products for every route), ``threads``
(torch threads) and ``routes`` (a subset of the routes).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from ..errors import ConfigError
from .record import error_text, finish_results, header_lines, new_results, write_results
from .suites import Suite

__all__ = ["run_kernels", "markdown", "DEFAULTS", "PEAK_BANDWIDTH_GBS"]

DEFAULTS = {
    "cpu": dict(sizes=[16, 32, 64, 128], batch=4, heads=4, hidden=64, edge_hidden=32, features=96, repeats=5,
                dtypes=["float32"]),
    "cuda": dict(sizes=[16, 32, 64, 128, 256, 512], batch=16, heads=8, hidden=256, edge_hidden=64, features=128,
                 repeats=20, dtypes=["float32", "bfloat16"]),
}
for _d in DEFAULTS.values():
    _d["threads"] = None  # torch threads (None: leave torch's setting)
    # end to end (graphdiff.bench.kernels_e2e): training of whole denoisers on generated SBM graphs
    _d.update(e2e_presets=["defog-sbm", "digress-sbm"], e2e_dataset="synth_sbm", e2e_batch=32, e2e_steps=10,
              e2e_amp=[False, True])

# device memory bandwidth (GB/s) from the vendors' data sheets, matched by substring of the device name
PEAK_BANDWIDTH_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 NVL": 3900, "H100 PCIe": 2000, "H100": 3350,
                      "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555, "L40S": 864, "L4": 300,
                      "A10": 600, "RTX 4090": 1008, "V100": 900, "T4": 320}


def _peak_bandwidth(torch) -> float | None:
    name = torch.cuda.get_device_name(0)
    for key, gbs in PEAK_BANDWIDTH_GBS.items():
        if key in name:
            return gbs * 1e9
    props = torch.cuda.get_device_properties(0)
    clock, bus = getattr(props, "memory_clock_rate", None), getattr(props, "memory_bus_width", None)
    return 2 * clock * 1e3 * bus / 8 if clock and bus else None


def _settings(overrides: dict | None, cuda: bool) -> dict:
    base = dict(DEFAULTS["cuda" if cuda else "cpu"])
    for key, value in (overrides or {}).items():
        if key not in base:
            raise ConfigError(f"--set {key}: not a setting of the kernels suite; known: {', '.join(base)}")
        base[key] = value
    for key in ("sizes", "dtypes", "e2e_presets", "e2e_amp"):
        base[key] = list(base[key]) if isinstance(base[key], (list, tuple)) else [base[key]]
    if base["hidden"] % base["heads"]:
        raise ConfigError(f"--set hidden={base['hidden']} must be a multiple of heads={base['heads']}")
    for d in base["dtypes"]:
        if d not in ("float32", "bfloat16", "tf32"):
            raise ConfigError(f"--set dtypes: {d!r} is not one of float32, bfloat16, tf32")
    return base


def _sync(torch, cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def _median_ms(torch, fn, repeats: int, cuda: bool) -> float:
    times = []
    for _ in range(repeats):
        _sync(torch, cuda)
        t = time.perf_counter()
        fn()
        _sync(torch, cuda)
        times.append(time.perf_counter() - t)
    return round(1e3 * statistics.median(times), 4)


def _saved_mb(torch, fn, inputs) -> float:
    """Activation memory kept for the backward pass by ``fn`` (storages not already held by ``inputs``)."""
    held = {t.untyped_storage().data_ptr() for t in inputs}
    seen: dict = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in held:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return round(sum(seen.values()) / 2**20, 3)


def _peak_mb(torch, fn) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return round((torch.cuda.max_memory_allocated() - base) / 2**20, 3)


def _measure(torch, route, args: tuple, grads: tuple, leaves: list, repeats: int, cuda: bool, want, bytes_fwd,
             peak_bw) -> dict:
    """One route on one case: outputs against ``want``, forward and training times, memory, bandwidth."""

    plain = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)

    def forward():  # sampling: no graph, inputs that do not require gradients
        with torch.no_grad():
            return route(*plain)

    def train():
        out = route(*args)
        out = out if isinstance(out, tuple) else (out,)
        loss = sum((o.float() * g).sum() for o, g in zip(out, grads))
        torch.autograd.grad(loss, leaves)

    got = forward()  # also the warm-up (compilation) of the forward pass
    got = got if isinstance(got, tuple) else (got,)
    diff = max(float((a.float() - b.float()).abs().max()) if a.numel() else 0.0 for a, b in zip(got, want))
    row = {"max_abs_diff": diff, "forward_ms": _median_ms(torch, forward, repeats, cuda)}
    if cuda:
        row["forward_peak_mb"] = _peak_mb(torch, forward)
        if peak_bw:
            row["forward_bandwidth_fraction"] = round(bytes_fwd / (row["forward_ms"] / 1e3) / peak_bw, 4)
    try:
        train()  # warm-up of the backward pass
    except Exception as exc:  # a route without a backward pass here: the forward numbers stand
        row["train_error"] = error_text(exc)
        return row
    row["train_ms"] = _median_ms(torch, train, repeats, cuda)
    if cuda:
        row["train_peak_mb"] = _peak_mb(torch, train)
    else:
        row["saved_mb"] = _saved_mb(torch, lambda: route(*args), leaves)
    return row


def _attention_case(torch, settings, n, dtype, cuda, device, peak_bw, only):
    from ..kernels import edge_attention_reference
    from .kernel_routes import attention_bytes, attention_inputs, attention_routes

    inp = attention_inputs(settings["batch"], n, settings["heads"], settings["hidden"], settings["edge_hidden"],
                           dtype, device)
    names = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")
    leaves = [inp[k].requires_grad_() for k in names if k != "mask"]
    args = tuple(inp[k] for k in names)
    with torch.no_grad():
        want = edge_attention_reference(*args)
    g = torch.Generator().manual_seed(1)
    grads = tuple(torch.randn(w.shape, generator=g).to(device) for w in want)
    for name, route in attention_routes(cuda).items():
        if only and name not in only:
            continue
        yield name, lambda r=route: _measure(torch, r, args, grads, leaves, settings["repeats"], cuda, want,
                                             attention_bytes(inp), peak_bw)


def _scatter_case(torch, settings, n, dtype, cuda, device, peak_bw, only, variant):
    from .kernel_routes import scatter_bytes, scatter_inputs, scatter_routes

    inp = scatter_inputs(settings["batch"], n, settings["features"], dtype, device)
    if variant == "segment":
        leaves = [inp["messages"].requires_grad_()]
        args = (inp["messages"], inp["dst"], inp["num_nodes"], "mean", None, None)
    else:
        leaves = [inp["nodes"].requires_grad_(), inp["weight"].requires_grad_()]
        args = (inp["nodes"], inp["dst"], inp["num_nodes"], "sum", inp["src"], inp["weight"])
    routes = scatter_routes(cuda)
    with torch.no_grad():
        want = (routes["reference"](*args),)
    grads = (torch.randn(want[0].shape, generator=torch.Generator().manual_seed(1)).to(device),)
    for name, route in routes.items():
        if only and name not in only:
            continue
        yield name, lambda r=route: _measure(torch, r, args, grads, leaves, settings["repeats"], cuda, want,
                                             scatter_bytes(inp, variant), peak_bw)


KERNELS = ("edge_attention", "message_scatter", "end_to_end")


def run_kernels(suite: Suite, *, out, overrides: dict | None = None, only=None, command: str | None = None,
                progress: bool = False, **_ignored) -> dict:
    """Run the kernels suite and write ``<out>/results.json`` and ``<out>/results.md``; returns the results.

    Args:
        overrides: settings (see the module docstring); ``routes`` may also name a subset of routes.
        only: kernels to run (``edge_attention``, ``message_scatter``).
        Other arguments of ``graphdiff bench run`` (minutes, samples, model, ...) do not apply and are ignored.

    ``end_to_end`` (training graphs/s of whole denoisers, :mod:`graphdiff.bench.kernels_e2e`) runs on a GPU; on a
    CPU only when named in ``only``, and then with the reference alone.
    """
    import torch

    overrides = dict(overrides or {})
    routes_only = overrides.pop("routes", None)
    routes_only = None if routes_only is None else set(routes_only if isinstance(routes_only, list) else
                                                       [routes_only])
    cuda = torch.cuda.is_available()
    settings = _settings(overrides, cuda)
    threads_before = torch.get_num_threads()
    if settings["threads"] is not None:
        torch.set_num_threads(int(settings["threads"]))
    try:
        return _run(torch, suite, out, settings, cuda, routes_only, only, command, progress)
    finally:
        torch.set_num_threads(threads_before)


def _run(torch, suite, out, settings, cuda, routes_only, only, command, progress) -> dict:
    for o in only or ():
        if o not in KERNELS:
            raise ConfigError(f"--only {o!r} is not a kernel of suite kernels; kernels: {', '.join(KERNELS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if cuda else "cpu"
    peak_bw = _peak_bandwidth(torch) if cuda else None
    note = (f"GPU: Triton kernels included; bandwidth against a peak of {peak_bw / 1e9:.0f} GB/s" if peak_bw else
            "GPU: Triton kernels included; device peak bandwidth unknown" if cuda else
            "CPU only: the Triton routes need a CUDA device and were not run; CPU comparisons only")
    results = new_results(suite, command, settings, note=note,
                          routes_only=sorted(routes_only) if routes_only else None)
    t_start = time.time()
    cases = []
    for kernel in KERNELS[:2]:
        if only and kernel not in only:
            continue
        for dtype_name in settings["dtypes"]:
            for n in settings["sizes"]:
                if kernel == "edge_attention":
                    cases.append((kernel, None, dtype_name, n))
                else:
                    cases += [(kernel, v, dtype_name, n) for v in ("segment", "gather")]
    precision_before = torch.get_float32_matmul_precision()
    try:
        _run_cases(torch, cases, settings, cuda, device, peak_bw, routes_only, results, out, progress)
    finally:
        torch.set_float32_matmul_precision(precision_before)
    if (cuda and not only) or "end_to_end" in (only or ()):
        from .kernels_e2e import end_to_end_rows

        modes = ("reference", "triton") if cuda else ("reference",)
        for row in end_to_end_rows(torch, settings, torch.device(device), modes=modes, progress=progress):
            row["load_average"] = round(os.getloadavg()[0], 2)
            results["rows"].append(row)
            write_results(out, results, markdown(results))
    return finish_results(out, results, markdown, t_start)


# dtypes of the settings: torch dtypes by name, and "tf32": float32 tensors with TF32 matrix products for every route
# (torch.set_float32_matmul_precision("high"), which the Triton kernel follows)
def _dtype(torch, name: str):
    if name == "tf32":
        torch.set_float32_matmul_precision("high")
        return torch.float32
    torch.set_float32_matmul_precision("highest")
    return getattr(torch, name)


def _run_cases(torch, cases, settings, cuda, device, peak_bw, routes_only, results, out, progress) -> None:
    for kernel, variant, dtype_name, n in cases:
        dtype = _dtype(torch, dtype_name)
        if routes_only is None or routes_only & {"compile", "flex"}:
            torch._dynamo.reset()  # every case compiles afresh: no recompilation limit across sizes
        gen = (_attention_case(torch, settings, n, dtype, cuda, device, peak_bw, routes_only) if variant is None else
               _scatter_case(torch, settings, n, dtype, cuda, device, peak_bw, routes_only, variant))
        for name, measure in gen:
            row = {"kernel": kernel, "variant": variant, "n": n, "batch": settings["batch"], "dtype": dtype_name,
                   "route": name, "load_average": round(os.getloadavg()[0], 2)}
            try:
                row.update(measure())
            except Exception as exc:  # an unsupported route or size here (out of memory, no compiler): said so
                row["error"] = error_text(exc)
                if cuda:
                    torch.cuda.empty_cache()
            results["rows"].append(row)
            if progress:
                print(f"  {kernel} {variant or ''} N={n} {dtype_name} {name}: "
                      + (row.get("error") or f"fwd {row['forward_ms']} ms, train {row.get('train_ms')} ms"), flush=True)
        write_results(out, results, markdown(results))


def _ratio(value, base) -> str:
    return f"{base / value:.2f}" if value and base else "-"


def markdown(results: dict) -> str:
    """``results.md``: one table per kernel (and variant), rows by dtype, size and route, speed-ups over the
    reference."""
    s = results["settings"]
    lines = header_lines(results) + [results["note"] + ".", "",
                                     f"Batch {s['batch']}; attention: {s['heads']} heads, width {s['hidden']}, edge "
                                     f"width {s['edge_hidden']}; scatter: {s['features']} features, fully connected "
                                     f"graphs; graphs of N/2..N real nodes; median of {s['repeats']} repeats after a "
                                     "warm-up (compilation excluded). x ref: the reference's time (or memory) over "
                                     "the route's. |diff|: largest output difference from the reference.", ""]
    rows = results["rows"]
    cuda = results["machine"]["cuda"]
    mem_cols = ["fwd peak MB", "train peak MB", "x ref (train)", "fwd bandwidth"] if cuda else \
        ["saved for backward MB", "x ref"]
    groups: dict = {}
    notes: set = set()
    for r in rows:
        if r["kernel"] != "end_to_end":
            groups.setdefault((r["kernel"], r["variant"]), []).append(r)
    for (kernel, variant), rs in groups.items():
        lines += [f"## {kernel}" + (f" ({variant})" if variant else ""), "",
                  "| dtype | N | route | fwd ms | x ref | fwd+bwd ms | x ref | " + " | ".join(mem_cols) + " | |diff| |",
                  "|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(mem_cols) + "---:|"]
        for r in rs:
            ref = next((x for x in rs if x["n"] == r["n"] and x["dtype"] == r["dtype"] and x["route"] == "reference"
                        and "error" not in x), {})
            if "error" in r:
                lines.append(f"| {r['dtype']} | {r['n']} | {r['route']} | {r['error']} |" + " |" * (5 + len(mem_cols)))
                continue
            if cuda:
                bw = r.get("forward_bandwidth_fraction")
                mem = [r["forward_peak_mb"], r.get("train_peak_mb", "-"),
                       _ratio(r.get("train_peak_mb"), ref.get("train_peak_mb")),
                       "-" if bw is None else f"{100 * bw:.1f}%"]
            else:
                mem = [r.get("saved_mb", "-"), _ratio(r.get("saved_mb"), ref.get("saved_mb"))]
            train = f"{r['train_ms']} | {_ratio(r['train_ms'], ref.get('train_ms'))}" if "train_ms" in r else \
                "no backward [1] | -"
            notes.update({r["train_error"]} if "train_error" in r else set())
            lines.append(f"| {r['dtype']} | {r['n']} | {r['route']} | {r['forward_ms']} | "
                         f"{_ratio(r['forward_ms'], ref.get('forward_ms'))} | {train} | " + " | ".join(map(str, mem))
                         + f" | {r['max_abs_diff']:.2e} |")
        lines.append("")
    if notes:
        lines += ["[1] " + "; ".join(sorted(notes)), ""]
    from .kernels_e2e import markdown_lines

    lines += markdown_lines([r for r in rows if r["kernel"] == "end_to_end"])
    return "\n".join(lines) + "\n"
