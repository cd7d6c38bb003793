"""Published benchmark rows, kept as data, and the markdown table that puts our rows beside them.

The rows live in ``references.yaml`` beside this module (transcribed from the project's REFERENCE_NUMBERS.md; its
header comment describes the layout). Each published value is stored as its source prints it, with a unit per
metric (``percent``, ``fraction``, ``mmd2``, ...). Our evaluator reports rates as fractions, so
:func:`format_table` converts between percent and fraction to the unit of each column. Example::

    rows = reference_rows("planar")
    print(format_table([{"method": "ours", "metrics": {"degree": 0.002, "vun": 0.5}}], rows, ["degree", "vun"]))
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["EVALUATOR_UNITS", "REFERENCES_PATH", "Published", "ReferenceRow", "format_table", "format_value",
           "load_references", "metrics_from_result", "reference_names", "reference_rows"]

REFERENCES_PATH = Path(__file__).with_name("references.yaml")

# Units of the figures our evaluator reports, by metric name (graphdiff.metrics.evaluate / molecules / vun / mmd).
_FRACTIONS = ("validity", "validity_strict", "validity_relaxed", "validity_corrected", "validity_gdss_decoding",
              "uniqueness", "novelty",
              "valid_unique_novel", "valid_connected", "filters", "snn", "frag", "scaf", "intdiv1", "intdiv2",
              "vun", "valid", "unique", "novel", "unique_novel", "atom_stable", "mol_stable", "mol_stable_corrected",
              "valid_unique")
EVALUATOR_UNITS: dict[str, str] = {
    **{k: "fraction" for k in _FRACTIONS},
    **{k: "mmd2" for k in ("degree", "clustering", "orbit", "spectral", "wavelet")},
    **{k: "score" for k in ("fcd", "nspdk", "qed_median", "qed_top10", "sa_median", "sa_top10")},
}
_UNIT_SUFFIX = {"percent": "%", "hours": "h", "seconds": "s", "times": "x"}
_SCALE = {"percent": 100.0, "fraction": 1.0}  # the two units that convert into each other
_QUALIFIERS = {"about": "≈{}", "up to": "up to {}", "more than": ">{}", "average": "{} (avg)"}


@dataclass(frozen=True)
class ReferenceRow:
    """One published row: its metrics as printed by the source, their units and labels, and where it comes from."""

    suite: str
    dataset: str
    method: str
    metrics: dict[str, Any]
    units: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    protocol: str | None = None
    samples: str | None = None
    card: str | None = None

    @property
    def citation(self) -> str:
        """Short source text for a table: paper, table, venue and year where given, ``[2]`` if second-hand."""
        s = self.source
        parts = [str(s["paper"])] + [str(s[k]) for k in ("table", "venue", "year") if s.get(k) is not None]
        return ", ".join(parts) + (" [2]" if s.get("secondhand") else "")


# ---- loading ------------------------------------------------------------------------------------------
def _need(mapping: Any, key: str, where: str, path: Path, kind: type | tuple = (str,)) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise DataError(f"{path}: {where}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise DataError(f"{path}: {where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _check_value(value: Any, where: str, path: Path) -> None:
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if number(value):
        return
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"range"} and isinstance(value["range"], list) and len(value["range"]) == 2 \
                and all(number(x) for x in value["range"]):
            return
        if "value" in keys and keys <= {"value", "pm", "qualifier"} and number(value["value"]) \
                and number(value.get("pm", 0)) and value.get("qualifier", "about") in _QUALIFIERS:
            return
    raise DataError(f"{path}: {where}: a value must be a number, {{value, pm | qualifier}} or {{range: [lo, hi]}}, "
                    f"got {value!r}")


def _validate(doc: Any, path: Path) -> None:
    units = _need(doc, "units", "top level", path, dict)
    suites = _need(doc, "suites", "top level", path, dict)
    for sname, suite in suites.items():
        datasets = _need(suite, "datasets", f"suites.{sname}", path, dict)
        for dname, ds in datasets.items():
            where = f"suites.{sname}.datasets.{dname}"
            declared = {**(suite.get("metrics") or {}), **(ds.get("metrics") or {})}
            if not declared:
                raise DataError(f"{path}: {where}: no metrics declared (here or on the suite)")
            for m, spec in declared.items():
                unit = _need(spec, "unit", f"{where}.metrics.{m}", path)
                _need(spec, "label", f"{where}.metrics.{m}", path)
                if unit not in units:
                    raise DataError(f"{path}: {where}.metrics.{m}.unit: unknown unit {unit!r}; "
                                    f"choose from {', '.join(units)}")
            for i, row in enumerate(_need(ds, "rows", where, path, list)):
                rwhere = f"{where}.rows[{i}]"
                _need(row, "method", rwhere, path)
                src = _need(row, "source", rwhere, path, dict)
                _need(src, "paper", f"{rwhere}.source", path)
                for m, v in _need(row, "metrics", rwhere, path, dict).items():
                    if m not in declared:
                        raise DataError(f"{path}: {rwhere}.metrics.{m}: metric not declared for {sname}/{dname}")
                    _check_value(v, f"{rwhere}.metrics.{m}", path)


class Published(float):
    """A float read from the reference file that remembers how the file wrote it (``0.0780``, ``90.0``)."""

    text: str

    def __new__(cls, text: str) -> Published:
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __reduce__(self):
        return (Published, (self.text,))


def _yaml_loader():
    from .. import yamlio

    class Loader(yamlio.Loader):
        pass

    def number(loader, node):
        value = loader.construct_yaml_float(node)
        return Published(node.value) if math.isfinite(value) else value

    Loader.add_constructor("tag:yaml.org,2002:float", number)
    return Loader


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> dict:
    import yaml

    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
    except OSError as e:
        raise DataError(f"{path}: cannot read reference rows ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    _validate(doc, path)
    return doc


def load_references(path: str | Path | None = None) -> dict:
    """The parsed and checked reference file (the packaged ``references.yaml`` by default).

    Raises:
        DataError: the file is unreadable, not YAML, or a field is missing, undeclared or malformed; the message
            names the file and the field.
    """
    return copy.deepcopy(_load(Path(path) if path is not None else REFERENCES_PATH))


def _tables(doc: dict) -> Iterable[tuple[str, str, dict, dict]]:
    for sname, suite in doc["suites"].items():
        for dname, ds in suite["datasets"].items():
            yield sname, dname, suite, ds


def reference_names(path: str | Path | None = None) -> list[str]:
    """Every name :func:`reference_rows` accepts: suites, datasets, and ``suite/dataset``."""
    doc = load_references(path)
    names = list(doc["suites"])
    for sname, dname, _, _ in _tables(doc):
        names += [dname, f"{sname}/{dname}"]
    return list(dict.fromkeys(names))


def reference_rows(suite_or_dataset: str, path: str | Path | None = None) -> list[ReferenceRow]:
    """Published rows of a suite (e.g. ``"spectre_graphs"``), a dataset (``"planar"``) or ``"suite/dataset"``.

    Raises:
        DataError: the name is none of these; the message lists the names there are.
    """
    doc = load_references(path)
    out = []
    for sname, dname, suite, ds in _tables(doc):
        if suite_or_dataset not in (sname, dname, f"{sname}/{dname}"):
            continue
        declared = {**(suite.get("metrics") or {}), **(ds.get("metrics") or {})}
        for row in ds["rows"]:
            out.append(ReferenceRow(
                suite=sname, dataset=dname, method=row["method"], metrics=dict(row["metrics"]),
                units={m: declared[m]["unit"] for m in row["metrics"]},
                labels={m: declared[m]["label"] for m in row["metrics"]},
                source={"section": ds.get("section", suite.get("section")), **row["source"]},
                notes=row.get("notes"), protocol=ds.get("protocol", suite.get("protocol")),
                samples=ds.get("samples", suite.get("samples")), card=ds.get("card")))
    if not out:
        raise DataError(f"no published rows for {suite_or_dataset!r}; choose from "
                        f"{', '.join(reference_names(path))}")
    return out


# ---- our results as flat metrics ---------------------------------------------------------------------
def metrics_from_result(result: Mapping[str, Any]) -> dict[str, float]:
    """Flat ``{metric: value}`` of an ``evaluate_graphs`` / ``evaluate_molecules`` result, named as the references.

    Graphs: every MMD statistic's ``mmd2`` under its statistic name, and ``vun``, ``valid``, ``unique``, ``novel``.
    Molecules: every numeric top-level figure except the counts (``n_*``). ``None`` figures are left out.
    """
    out: dict[str, float] = {}
    if result.get("kind") == "graphs":
        for name, stat in (result.get("mmd") or {}).get("stats", {}).items():
            if stat.get("mmd2") is not None:
                out[name] = stat["mmd2"]
        for name in ("vun", "valid", "unique", "novel"):
            v = (result.get("vun") or {}).get(name)
            if v is not None:
                out[name] = v
        return out
    for name, v in result.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not name.startswith("n_") \
                and name != "seconds":
            out[name] = v
    if result.get("kind") == "molecules_3d":  # the published MiDi-protocol columns are the legacy rule's
        for ours, theirs in (("molecule_stability_legacy", "mol_stable"), ("atom_stability_legacy", "atom_stable")):
            if out.get(ours) is not None:
                out[theirs] = out[ours]
    return out


# ---- table ------------------------------------------------------------------------------------------
def format_value(value: Any, scale: float = 1.0) -> str:
    """A table cell: a published number as written (when not rescaled), else 4 significant digits.

    Mappings print as ``≈x``, ``up to x``, ``>x``, ``x (avg)``, ``x ± e`` or ``lo–hi``; ``None`` as ``-``.
    """
    if value is None:
        return "-"

    def num(x):
        if isinstance(x, Published) and scale == 1.0:
            return x.text
        x = x * scale
        return f"{x:.4g}" if abs(x) >= 1e-4 or x == 0 else f"{x:.2e}"

    if isinstance(value, Mapping):
        if "range" in value:
            lo, hi = value["range"]
            return f"{num(lo)}–{num(hi)}"
        text = num(value["value"])
        if value.get("pm") is not None:
            text += f" ± {num(value['pm'])}"
        return _QUALIFIERS[value["qualifier"]].format(text) if value.get("qualifier") else text
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return num(value)


def _scale(from_unit: str, to_unit: str, metric: str, who: str) -> float:
    if from_unit == to_unit:
        return 1.0
    if from_unit in _SCALE and to_unit in _SCALE:
        return _SCALE[to_unit] / _SCALE[from_unit]
    raise DataError(f"metric {metric!r}: {who} is in {from_unit}, the column in {to_unit}; they do not convert")


def _our_row(row: Any) -> tuple[str, dict, dict, str]:
    if isinstance(row, ReferenceRow):
        return row.method, row.metrics, row.units, row.citation
    if not isinstance(row, Mapping) or "method" not in row or not isinstance(row.get("metrics"), Mapping):
        raise DataError(f"our row {row!r}: expected a mapping with 'method' and 'metrics'")
    for k, v in row["metrics"].items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise DataError(f"our row {row['method']!r}: metric {k!r} = {v!r} is not a number")
    return str(row["method"]), dict(row["metrics"]), dict(row.get("units") or {}), str(row.get("source", "graphdiff"))


def format_table(our_rows: Sequence[Any], reference_rows: Sequence[ReferenceRow],
                 metrics: Sequence[str] | None = None) -> str:
    """A markdown table: our rows, then the published ones, sharing metric columns, with a ``source`` column.

    Args:
        our_rows: mappings ``{"method": str, "metrics": {name: value}, "units": {name: unit} (optional),
            "source": str (optional, default "graphdiff")}``; a unit not given is the evaluator's
            (:data:`EVALUATOR_UNITS`: rates are fractions), else the column's.
        reference_rows: rows from :func:`reference_rows`.
        metrics: the metric columns, in order (default: every metric of the rows, in order of appearance).

    Each column takes the unit of the first published row that has the metric (else of the first of our rows);
    percent and fraction values are converted to it, and the header names the unit (``vun (%)``). Missing
    values are ``-``.

    Raises:
        DataError: a row is malformed, or a metric comes in units that do not convert into each other.
    """
    ours = [_our_row(r) for r in our_rows]
    refs = [(r.method, r.metrics, r.units, r.citation) for r in reference_rows]
    for i, (_, m, u, _) in enumerate(ours):
        ours[i] = (ours[i][0], m, {k: u.get(k, EVALUATOR_UNITS.get(k)) for k in m}, ours[i][3])
    if metrics is None:
        metrics = list(dict.fromkeys(k for _, m, _, _ in refs + ours for k in m))
    column_unit = {}
    for k in metrics:
        units = [u[k] for _, m, u, _ in refs if k in m] + [u[k] for _, m, u, _ in ours if k in m and u[k]]
        column_unit[k] = units[0] if units else None

    def cells(method, values, units, source, who):
        row = [method]
        for k in metrics:
            if values.get(k) is None:
                row.append("-")
                continue
            unit, col = units.get(k) or column_unit[k], column_unit[k]
            row.append(format_value(values[k], _scale(unit, col, k, f"row {method!r} ({who})") if col else 1.0))
        return row + [source]

    header = ["method"] + [k + (f" ({_UNIT_SUFFIX[column_unit[k]]})" if column_unit[k] in _UNIT_SUFFIX else "")
                           for k in metrics] + ["source"]
    body = [cells(*r, "ours") for r in ours] + [cells(*r, "published") for r in refs]
    widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
    right = [False] + [True] * len(metrics) + [False]

    def line(row):
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in body])
