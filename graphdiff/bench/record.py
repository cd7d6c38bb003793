"""What every benchmark run records: the machine, an entry's overrides, network calls per graph, the results files.

Shared by the suite runner (:mod:`graphdiff.bench.runner`) and the protocols with their own loop
(:mod:`graphdiff.bench.lggm` and its report, :mod:`graphdiff.bench.lggm_report`), which sit above this module and
beside each other.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ..config import merge
from .suites import Entry


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    """Where a run happens: device, threads, cores, load, versions."""
    import torch

    from .._version import __version__

    cuda = torch.cuda.is_available()
    return {"device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})",
            "cuda": cuda, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "torch": torch.__version__,
            "python": platform.python_version(), "graphdiff": __version__, "git_commit": _git_commit()}


def entry_overrides(entry: Entry, user: dict | None, cpu: bool) -> dict:
    """The overrides an entry trains with: its CPU network and batch (on a CPU), its own, then the user's."""
    over = merge(entry.cpu, {}) if cpu else {}
    over = merge(over, entry.overrides)
    if entry.dataset:
        over["dataset"] = entry.dataset
    return merge(over, user or {})


def _calls_per_graph(pipe, steps: int):
    stats = getattr(pipe.process, "total_stats", None)
    if stats and stats.get("graphs"):
        return round(stats["network_calls"] / stats["graphs"], 1)
    return 2 * steps if pipe.process.name == "gdss" and pipe.config.sample.sampler == "pc" else steps


def new_results(suite, command: str | None, settings: dict, *, machine_info: dict | None = None, **extra) -> dict:
    """The head of a suite's ``results.json``: the suite, the command (default: this process's ``graphdiff``
    arguments), the settings, ``extra`` fields, the start time and the machine (``machine_info``, else now), no rows
    yet."""
    return {"suite": suite.name, "description": suite.description, "kind": suite.kind,
            "command": command or "graphdiff " + " ".join(sys.argv[1:]), "settings": settings, **extra,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_info or machine(), "rows": []}


def cell(v) -> str:
    """A results table's cell: 4 significant digits for floats, ``-`` for a missing or NaN value."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def model_tables(results: dict, columns, what: str = "molecules per method"):
    """For each model of the results (in run order): ``(rows, lines)``, its rows and the lines of its section (a
    heading with the samples, steps and seed, then a table of ``columns``)."""
    for model in dict.fromkeys(r["model"] for r in results["rows"]):
        rows = [r for r in results["rows"] if r["model"] == model]
        lines = [f"## {model} ({rows[0]['samples']} {what}, {rows[0]['steps']} steps, seed "
                 f"{results['settings'].get('seed', 0)})", "",
                 "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
        yield rows, lines


def open_run(suite, out, root, raw_from, only, model, who: str) -> tuple[Path, Path, list]:
    """The start of a suite with its own loop: the results folder (made), the dataset root (default
    ``<out>/data``, with the suite's offline raw files linked in) and the entries picked by ``only`` (one with
    ``--model``)."""
    from ..errors import ConfigError
    from .offline import link_raw

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else out / "data"
    link_raw(root, suite.datasets, raw_from)
    entries = [e for e in suite.entries if not only or e.name in only]
    if model is not None and len(entries) != 1:
        raise ConfigError(f"bench run {who} --model: pick one entry with --only")
    return out, root, entries


def error_text(exc: Exception) -> str:
    """A result row's one-line account of an exception: its type and the first line of its message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}"


def header_lines(results: dict) -> list[str]:
    """The head of ``results.md``: suite, description, command, machine, load and time."""
    m = results["machine"]
    lines = [f"# graphdiff bench: {results['suite']}", "", results["description"], "",
             f"`{results['command']}`", "",
             f"graphdiff {m['graphdiff']} (commit {m['git_commit'] or 'unknown'}), torch {m['torch']}, "
             f"{m['device']}, {m['torch_threads']} torch threads, {m['cpu_count']} cores, load average "
             f"{m['load_average'][0]} at the start, {results.get('load_average_at_end', ['?'])[0]} at the end; "
             f"started {results['started']}, {results.get('wall_minutes', '?')} min in all.", ""]
    return lines


def finish_results(out: Path, results: dict, markdown, t_start: float) -> dict:
    """Stamp a finished run (end time, wall minutes, load at the end), write it with ``markdown(results)`` and
    return it."""
    import os
    import time

    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["wall_minutes"] = round((time.time() - t_start) / 60, 2)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(out, results, markdown(results))
    return results


def save_progress(out: Path, results: dict, markdown) -> None:
    """Write the results so far (after each row of a long suite), with the load average now."""
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(out, results, markdown(results))


def write_results(out: Path, results: dict, markdown: str) -> None:
    """``results.json`` (written atomically) and ``results.md``."""
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(out / "results.json")
    (out / "results.md").write_text(markdown)
