"""``graphdiff sample --guide self``: complete a partly observed image or series window with an unconditional model.

    graphdiff sample --model DIR --guide self --observed FILE [--observed-mask FILE|bottom|top|left|right]
                     [--scale S] [--variant mse|quantile] [--replace] [-n N] [--steps K] --out OUT

TSDiff's observation self-guidance (:mod:`graphdiff.guidance.self_guidance`) from the command line: image
inpainting and series completion / forecasting with a model trained on a fixed grid or path graph, no retraining.

* Images (a model on :class:`~graphdiff.adapters.ImageGrid`): ``--observed`` is ``.npy`` (``[H, W]``,
  ``[C, H, W]`` or ``[n, C, H, W]``, in the model's value range, e.g. 0..16 for the digits) or ``.png`` (0..255
  mapped to the value range); NaN pixels are unknown. ``--observed-mask`` is a ``.npy`` of the same shape (or
  without C; True / nonzero = known) or a half to hide: ``bottom``, ``top``, ``left``, ``right``. Output: ``.png``
  (a grid of the completions) or ``.npy`` (``[n, C, H, W]`` in the value range).
* Series (a model on :class:`~graphdiff.adapters.TimeSeriesPath`): ``--observed`` is ``.csv`` (a date column, then
  value columns; empty cells unknown) or ``.npy`` (``[T]``, ``[T, C]`` or ``[n, T, C]``, NaN unknown) with
  ``T <= L`` steps; the steps after the ``T`` given ones are unknown (a forecast when ``T = L - H``). The window is
  scaled by its observed context as in training and mapped back. Output: ``.csv`` (mean and the 0.1..0.9
  quantiles per step and channel) or ``.npy`` (``[n, L, C]`` sample paths in the data's units).

Observed values are pasted into the output (the guidance pulls the sample toward them; the loss on them is printed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, DataError

HALVES = ("bottom", "top", "left", "right")
OUTPUTS = {"grid": (".png", ".npy"), "path": (".csv", ".npy")}


def _read_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{what} {path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{what} {path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise DataError(f"{what} {path}: wants a numeric array, got dtype {getattr(arr, 'dtype', type(arr))}")
    return arr


def _read_png(path: Path, grid) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img = img.convert("L" if grid.channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"--observed {path}: not a readable PNG ({exc})") from None
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    lo, hi = grid.value_range
    return lo + a * (hi - lo)


def _image_observation(grid, path: Path, mask_arg: str | None) -> tuple[torch.Tensor, torch.Tensor, None]:
    """``([B, C, H, W] values with NaN, [B, C, H, W] known, None)`` of an image model, B = 1 or the file's
    count."""
    c, h, w = grid.channels, grid.height, grid.width
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".png"):
        raise ConfigError(f"--observed {path.name}: an image model reads .npy or .png, got {suffix or 'no suffix'}")
    if suffix == ".png" and not path.is_file():
        raise DataError(f"--observed {path}: no such file")
    arr = _read_png(path, grid) if suffix == ".png" else _read_array(path, "--observed").astype(np.float32)
    shape = list(arr.shape)
    if arr.ndim == 2 and c == 1:
        arr = arr[None, None]
    elif arr.ndim == 3 and (c, h, w) == arr.shape:
        arr = arr[None]
    elif arr.ndim == 3 and c == 1 and arr.shape[1:] == (h, w):
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1:] != (c, h, w):
        raise DataError(f"--observed {path}: shape {shape} does not fit this model's images: want [{h}, {w}]"
                        f"{'' if c > 1 else ' or [n, ' + str(h) + ', ' + str(w) + ']'}, [{c}, {h}, {w}] or "
                        f"[n, {c}, {h}, {w}]")
    values = torch.from_numpy(np.ascontiguousarray(arr))
    known = ~torch.isnan(values)
    if mask_arg in HALVES:
        hide = torch.zeros(h, w, dtype=torch.bool)
        {"bottom": hide[h // 2:], "top": hide[: h - h // 2], "right": hide[:, w // 2:],
         "left": hide[:, : w - w // 2]}[mask_arg].fill_(True)
        known = known & ~hide
    elif mask_arg is not None:
        known = known & _mask_file(Path(mask_arg), values.shape, -3)
    return values, known, None


def _mask_file(path: Path, shape, channel_axis: int) -> torch.Tensor:
    """A known-entry mask from ``.npy`` shaped like the observation, per item or for all, with or without the
    channel axis (``channel_axis``: -3 for images, -1 for series); True / nonzero = known."""
    if path.suffix.lower() != ".npy":
        raise ConfigError(f"--observed-mask {path.name}: wants a .npy array or one of {', '.join(HALVES)}")
    m = torch.from_numpy(_read_array(path, "--observed-mask") != 0)
    for cand in (m, m.unsqueeze(channel_axis)):
        try:
            return cand.expand(*shape)
        except RuntimeError:
            continue
    raise DataError(f"--observed-mask {path}: shape {list(m.shape)} does not fit the observation {list(shape)} "
                    f"(the same shape, or without the channel axis)")


def _series_observation(path_adapter, path: Path, mask_arg: str | None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """``([B, L, C] values with NaN, [B, L, C] known, labels)`` of a series model; steps after the file's are
    unknown. ``labels``: a CSV's ``(dates over the window, column names)``, else ``None``."""
    big_l, c = path_adapter.n_nodes, path_adapter.channels
    suffix = path.suffix.lower()
    labels = None  # a CSV's dates (over the whole window) and column names, for the output table
    if suffix == ".csv":
        from .data.series import read_series_csv

        ts = read_series_csv(path)
        arr = ts.values.astype(np.float32)
        if len(arr) > big_l:
            raise DataError(f"--observed {path}: {len(arr)} rows, more than this model's window of {big_l} steps; "
                            f"to forecast a longer series use graphdiff forecast --context {path}")
        if ts.values.shape[1] == c:
            from .forecast.output import future_timestamps

            stamps = ts.timestamps
            if stamps is not None and len(arr) < big_l:
                stamps = np.concatenate([stamps, future_timestamps(stamps, big_l - len(arr))])
            labels = (stamps, tuple(ts.channels))
    elif suffix == ".npy":
        arr = _read_array(path, "--observed").astype(np.float32)
    else:
        raise ConfigError(f"--observed {path.name}: a series model reads .csv or .npy, got {suffix or 'no suffix'}")
    if mask_arg in HALVES:
        raise ConfigError(f"--observed-mask {mask_arg} is for image models; a series window takes a .npy mask "
                          "(or NaN / missing steps in --observed)")
    shape = list(arr.shape)
    if arr.ndim == 1 and c == 1:
        arr = arr[None, :, None]
    elif arr.ndim == 2 and arr.shape[1] == c:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != c or not 1 <= arr.shape[1] <= big_l:
        raise DataError(f"--observed {path}: shape {shape} does not fit this model's windows of {big_l} steps x {c} "
                        f"channel(s): want [T, {c}]{' or [T]' if c == 1 else ''} or [n, T, {c}] with 1 <= T <= "
                        f"{big_l}")
    values = torch.from_numpy(np.ascontiguousarray(arr))
    known = ~torch.isnan(values)
    if mask_arg is not None:
        known = known & _mask_file(Path(mask_arg), values.shape, -1)
    t = values.shape[1]
    if t < big_l:  # the rest of the window is to be filled in
        pad = torch.full((values.shape[0], big_l - t, c), float("nan"))
        values, known = torch.cat([values, pad], 1), torch.cat([known, torch.zeros_like(pad, dtype=torch.bool)], 1)
    return values, known, labels


def sample_observed(args) -> int:
    """``graphdiff sample --guide self`` (module docstring)."""
    from .adapters import adapter_from_schema, fixed_graph_spec
    from .pipeline import GraphDiffusionPipeline

    if args.observed is None:
        raise ConfigError("--guide self needs --observed FILE (the values to keep; NaN or --observed-mask marks the "
                          "unknown ones)")
    if args.shard is not None:
        raise ConfigError("--guide runs unsharded (each sample's search is whole); drop --shard / torchrun")
    if args.n is not None and args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be a positive integer, got {args.steps}")
    from .checks import check_output_file

    out = check_output_file(args.out, inputs={"--observed": args.observed, "--observed-mask": args.observed_mask})
    observed = Path(args.observed)
    pipe = GraphDiffusionPipeline.from_pretrained(args.model, device=args.device)
    if fixed_graph_spec(pipe.schema) is None:
        raise ConfigError(f"--guide self needs a model on a fixed grid or path graph (images, time series); "
                          f"{args.model} is a {pipe.schema.kind} model")
    adapter = adapter_from_schema(pipe.schema)
    kind = getattr(adapter, "kind", "?")
    if kind not in OUTPUTS:
        raise ConfigError(f"--guide self knows image (grid) and series (path) models, not {kind!r}")
    if out.suffix.lower() not in OUTPUTS[kind]:
        raise ConfigError(f"--out {out.name}: a {'image' if kind == 'grid' else 'series'} model writes "
                          f"{' or '.join(OUTPUTS[kind])} with --guide self")
    read = _image_observation if kind == "grid" else _series_observation
    raw, known, labels = read(adapter, observed, args.observed_mask)
    if not known.any():
        raise DataError(f"--observed {observed}: no value is observed (all NaN or masked)")
    b = raw.shape[0]
    n = args.n or (b if b > 1 else pipe.config.sample.num_samples or 16)
    if b not in (1, n):
        raise ConfigError(f"--observed {observed} holds {b} items; -n must be {b} (or the file one item), got {n}")
    scale = None
    if kind == "path":
        scale = adapter.scale(raw, known=known)
        values, known_x = adapter.observation(raw, known, scale=scale)
    else:
        values, known_x = adapter.observation(raw, known)
    from .guidance.self_guidance import self_guidance_defaults

    variant, guide_scale, replace = self_guidance_defaults(pipe, args.variant, args.scale,
                                                           fallback="quantile" if kind == "path" else "mse",
                                                           replace=args.replace)
    state = pipe.sample(n, steps=args.steps, sampler=args.sampler, seed=args.seed, progress=not args.quiet,
                        guide="self", observed=values if b > 1 else values[0],
                        observed_mask=known_x if b > 1 else known_x[0], batch_size=args.batch_size,
                        guide_options={"scale": guide_scale, "variant": variant, "replace": replace})
    g = pipe.last_guidance
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "grid":
        imgs = adapter.from_state(state)
        if out.suffix.lower() == ".npy":
            np.save(out, imgs.numpy())
        else:
            from .adapters import save_image_grid

            save_image_grid(imgs, out, value_range=adapter.value_range)
    else:
        paths = adapter.from_state(state, scale.expand(n, -1, -1) if b == 1 else scale).numpy()
        if out.suffix.lower() == ".npy":
            np.save(out, paths)
        else:
            from .forecast.output import forecast_table, write_forecast_csv

            stamps, names = labels or (None, adapter.channel_names())
            if b > 1 or stamps is None or len(stamps) != paths.shape[1]:
                stamps = None
            write_forecast_csv(forecast_table(paths, stamps, names), out)
    how = f"{variant}, scale {guide_scale:g}" + (", replacement" if replace else "")
    print(f"self-guidance ({how}) from {observed.name}: {int(known.sum())} of "
          f"{known[0].numel() * b} values observed; median observation loss {float(np.median(g.rewards)):.4g}; "
          f"{g.cost['network_calls_per_sample']:g} network calls per sample")
    print(f"wrote {n} completions to {out}")
    return 0


__all__ = ["sample_observed", "HALVES"]
