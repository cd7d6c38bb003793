"""The published rows in graphdiff/bench/references.yaml: every number traced back to REFERENCE_NUMBERS.md, and the
markdown table that puts our rows beside them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from graphdiff.bench.references import (
    EVALUATOR_UNITS,
    Published,
    format_table,
    format_value,
    load_references,
    metrics_from_result,
    reference_names,
    reference_rows,
)
from graphdiff.errors import DataError


def _find_reference_numbers() -> Path | None:
    """REFERENCE_NUMBERS.md in $GRAPHDIFF_SHARED, else ../shared beside the repository, else /work/shared."""
    for d in (os.environ.get("GRAPHDIFF_SHARED"), Path(__file__).resolve().parents[3] / "shared", "/work/shared"):
        if d and (Path(d) / "REFERENCE_NUMBERS.md").is_file():
            return Path(d) / "REFERENCE_NUMBERS.md"
    return None


REF_MD = _find_reference_numbers()
needs_md = pytest.mark.skipif(REF_MD is None, reason="REFERENCE_NUMBERS.md not found (set GRAPHDIFF_SHARED)")
DASHES = {"–", "-", "—"}


# ---- parsing REFERENCE_NUMBERS.md ---------------------------------------------------------------------------
def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every ``## `` section, in order (a heading may occur twice)."""
    out, heading, body = [], "", []
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((heading, "\n".join(body)))
            heading, body = line[3:].strip(), []
        else:
            body.append(line)
    out.append((heading, "\n".join(body)))
    return out


def _tables(body: str) -> list[dict]:
    """The markdown tables of a section: header cells and rows as (cells, text after the last pipe)."""
    tables, block = [], []
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            split = [ln.split("|") for ln in block]
            header = [c.strip() for c in split[0][1:-1]]
            rows = [([c.strip() for c in p[1:-1]], p[-1].strip()) for p in split[2:]]
            tables.append({"header": header, "rows": rows})
            block = []
    return tables


def _cell_numbers(cell: str) -> list[str]:
    """The number(s) of a cell as written: a trailing "(note)" dropped, "a / b" split; [] for a dash."""
    cell = re.sub(r"\s*\(.*\)\s*$", "", cell).strip()
    if cell in DASHES:
        return []
    return [p.strip() for p in cell.split(" / ")]


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+")


def _canonical(text: str) -> str:
    """A number's text without thousands separators or a leading zero: '0.0780' and '.0780' compare equal."""
    text = text.replace(",", "")
    return text[1:] if text.startswith("0.") else text


def _flat(value) -> list:
    """The numbers a YAML value holds, in the order the source writes them (x ± e, lo–hi)."""
    if isinstance(value, dict):
        return list(value["range"]) if "range" in value else [value["value"]] + ([value["pm"]] if "pm" in value else [])
    return [value]


def _text(x) -> str:
    return x.text if isinstance(x, Published) else str(x)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


@pytest.fixture(scope="module")
def reference_md():
    if REF_MD is None:
        pytest.skip("REFERENCE_NUMBERS.md not found (set GRAPHDIFF_SHARED)")
    sections = _sections(REF_MD.read_text(encoding="utf-8"))
    return [{"heading": h, "text": _norm(b), "tables": _tables(b)} for h, b in sections]


def _all_rows():
    """(suite, dataset key, dataset dict with inherited fields, row) of every YAML row."""
    doc = load_references()
    for sname, suite in doc["suites"].items():
        for dname, ds in suite["datasets"].items():
            merged = {"section": suite.get("section"), "table": suite.get("table"),
                      "metrics": {**(suite.get("metrics") or {}), **(ds.get("metrics") or {})}}
            merged.update({k: ds[k] for k in ("section", "table") if k in ds})
            for row in ds["rows"]:
                yield sname, dname, merged, row


def _matching_sections(md, prefix):
    found = [s for s in md if s["heading"].startswith(prefix)]
    assert found, f"no section of REFERENCE_NUMBERS.md starts with {prefix!r}"
    return found


# ---- traceability ---------------------------------------------------------------------------------------------
def test_every_table_row_value_is_its_markdown_cell(reference_md):
    """Each YAML number of a table row equals, as written, the cell of its column in that markdown row."""
    checked = 0
    for sname, dname, ds, row in _all_rows():
        src = row["source"]
        if "table_row" not in src:
            continue
        where = f"{sname}/{dname} {row['method']!r}"
        tables = [t for s in _matching_sections(reference_md, src.get("section", ds["section"]))
                  for t in s["tables"] if t["header"][0] == ds["table"]]
        assert len(tables) == 1, f"{where}: {len(tables)} tables with first header cell {ds['table']!r}"
        table = tables[0]
        rows = [r for r in table["rows"] if r[0][0] == src["table_row"]]
        assert len(rows) == 1, f"{where}: no single markdown row {src['table_row']!r}"
        cells, tail = rows[0]
        if "model" in table["header"][1:]:  # the GDSS table: dataset first, then the model
            assert cells[table["header"].index("model")] == row["method"], f"{where}: another model"
        assert src["secondhand"] == (tail == "[2]"), f"{where}: secondhand flag disagrees with the row's [2]"
        for metric, value in row["metrics"].items():
            label = ds["metrics"][metric]["label"]
            assert label in table["header"], f"{where}: no column {label!r} in {table['header']}"
            parts = _cell_numbers(cells[table["header"].index(label)])
            assert parts, f"{where}: {metric} = {value} but the {label!r} cell is empty"
            text = parts[src.get("part", 0)] if len(parts) > 1 else parts[0]
            assert float(text) == value, f"{where}: {metric} = {value}, the {label!r} cell says {text}"
            assert _canonical(_text(value)) == _canonical(text), f"{where}: {metric} written {_text(value)}, not {text}"
            checked += 1
    assert checked >= 80


def test_every_markdown_table_is_transcribed_completely(reference_md):
    """Every table of REFERENCE_NUMBERS.md is some dataset's, and every number of it is in some YAML row."""
    used = set()
    tables_used = set()
    for _, _, ds, row in _all_rows():
        src = row["source"]
        if "table_row" not in src:
            continue
        section = src.get("section", ds["section"])
        tables_used.add((section, ds["table"]))
        for metric in row["metrics"]:
            used.add((section, ds["table"], src["table_row"], ds["metrics"][metric]["label"], src.get("part", 0)))
    missing = []
    for sec in reference_md:
        for table in sec["tables"]:
            owners = [(p, t) for p, t in tables_used if sec["heading"].startswith(p) and t == table["header"][0]]
            assert owners, f"table {table['header']} of section {sec['heading']!r} is not transcribed"
            (prefix, first), = owners
            for cells, _ in table["rows"]:
                for label, cell in zip(table["header"][1:], cells[1:]):
                    parts = _cell_numbers(cell)
                    for i in range(len(parts)):
                        if not _NUMBER.fullmatch(parts[i]):  # a name (the model column of the GDSS table)
                            continue
                        any_part = [i] if len(parts) > 1 else [0, 1]
                        if not any((prefix, first, cells[0], label, j) in used for j in any_part):
                            missing.append(f"{sec['heading'][:30]!r} row {cells[0]!r} column {label!r} part {i}")
    # a cell the source gives once for an "a / b" row ("99.99") is kept on one row only; every other cell is used
    assert not missing, "not transcribed: " + "; ".join(missing)


def test_every_prose_value_is_in_its_quote_in_order(reference_md):
    """Rows given in prose quote the file's words: the quote is in the section, and the row's numbers, as written
    and in the order of ``metrics``, are a subsequence of the quote's numbers."""
    checked = 0
    for sname, dname, ds, row in _all_rows():
        src = row["source"]
        if "quote" in src:
            where = f"{sname}/{dname} {row['method']!r}"
            quotes = src["quote"] if isinstance(src["quote"], list) else [src["quote"]]
            sections = _matching_sections(reference_md, src.get("section", ds["section"]))
            for q in quotes:
                assert any(_norm(q) in s["text"] for s in sections), f"{where}: quote {q!r} not in its section"
            numbers = [_canonical(n) for q in quotes for n in _NUMBER.findall(q)]
            want = [_canonical(_text(x)) for v in row["metrics"].values() for x in _flat(v)]
            it = iter(numbers)
            assert all(w in it for w in want), f"{where}: {want} not in order among the quote's numbers {numbers}"
            checked += len(want)
        if src.get("year") is not None:
            sections = _matching_sections(reference_md, src.get("section", ds["section"]))
            assert any(str(src["year"]) in s["text"] for s in sections), f"year {src['year']} not in its section"
    assert checked >= 60


def test_every_row_is_traceable_one_way():
    """A row names exactly one way back to the file: a table row or a quote."""
    for sname, dname, _, row in _all_rows():
        assert ("table_row" in row["source"]) != ("quote" in row["source"]), f"{sname}/{dname} {row['method']!r}"


@needs_md
def test_a_transcription_typo_is_caught(reference_md):
    """The cell check fails on a value one digit off and on a trailing zero dropped."""
    table = next(t for s in reference_md if s["heading"].startswith("Planar") for t in s["tables"]
                 if t["header"][0] == "planar")
    cells, _ = next(r for r in table["rows"] if r[0][0] == "DiGress (1000 steps)")
    text = _cell_numbers(cells[table["header"].index("clus")])[0]
    assert float(text) == 0.0780 and _canonical(Published("0.0780").text) == _canonical(text)
    assert float(text) != 0.0708
    assert _canonical(Published("0.078").text) != _canonical(text)


# ---- the file itself ------------------------------------------------------------------------------------------
def test_metric_names_units_and_values():
    doc = load_references()
    for sname, dname, ds, row in _all_rows():
        for metric, value in row["metrics"].items():
            unit = ds["metrics"][metric]["unit"]
            assert unit in doc["units"]
            if metric in EVALUATOR_UNITS and EVALUATOR_UNITS[metric] != unit:  # our fractions vs their percent
                assert {unit, EVALUATOR_UNITS[metric]} == {"percent", "fraction"}, (sname, dname, metric)
            for x in _flat(value):
                assert x >= 0
                if unit == "percent":
                    assert x <= 100, (sname, dname, row["method"], metric)
                if unit == "fraction":
                    assert x <= 1, (sname, dname, row["method"], metric)


def test_reference_rows_by_suite_dataset_and_both():
    planar = reference_rows("planar")
    assert [r.method for r in planar][:2] == ["DiGress (1000 steps)", "GruM"]
    assert planar[0].units["vun"] == "percent" and planar[0].units["degree"] == "mmd2"
    assert planar[0].protocol.startswith("spectre") and planar[0].samples == "40 test graphs"
    assert reference_rows("spectre_graphs/planar") == planar
    assert len(reference_rows("spectre_graphs")) == len(planar) + len(reference_rows("sbm"))
    assert {r.dataset for r in reference_rows("molecules")} >= {"qm9", "zinc250k", "moses"}
    grumzinc = next(r for r in reference_rows("zinc250k") if r.method == "GruM")
    assert grumzinc.citation == "GruM [2]" and grumzinc.source["secondhand"]
    assert "planar" in reference_names() and "molecules/qm9" in reference_names()


def test_unknown_name_is_a_one_line_error():
    with pytest.raises(DataError, match=r"no published rows for 'plnar'; choose from .*planar"):
        reference_rows("plnar")


def test_load_rejects_an_undeclared_metric(tmp_path):
    bad = tmp_path / "refs.yaml"
    bad.write_text("units: {percent: p}\nsuites:\n  s:\n    metrics: {vun: {label: V, unit: percent}}\n"
                   "    datasets:\n      d:\n        rows:\n          - method: m\n            source: {paper: P}\n"
                   "            metrics: {fcd: 1.0}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"refs.yaml: suites.s.datasets.d.rows\[0\].metrics.fcd: metric not declared"):
        load_references(bad)
    bad.write_text("units: {percent: p}\nsuites:\n  s:\n    metrics: {vun: {label: V, unit: percent}}\n"
                   "    datasets:\n      d:\n        rows:\n          - method: m\n            source: {paper: P}\n"
                   "            metrics: {vun: {range: [1]}}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\[0\].metrics.vun: a value must be"):
        load_references(bad)


# ---- the table ------------------------------------------------------------------------------------------------
def _columns(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_format_table_aligns_converts_and_marks_missing():
    refs = reference_rows("planar")
    ours = [{"method": "graphdiff DeFoG", "metrics": {"degree": 0.00123, "vun": 0.5}, "source": "this run"}]
    table = format_table(ours, refs, ["degree", "clustering", "vun"])
    lines = table.splitlines()
    assert len(lines) == 2 + 1 + len(refs)
    assert len({len(ln) for ln in lines}) == 1
    pipes = [[i for i, c in enumerate(ln) if c == "|"] for ln in lines]
    assert all(p == pipes[0] for p in pipes)
    assert _columns(lines[0]) == ["method", "degree", "clustering", "vun (%)", "source"]
    assert _columns(lines[2]) == ["graphdiff DeFoG", "0.00123", "-", "50", "this run"]
    assert _columns(lines[3]) == ["DiGress (1000 steps)", "0.0007", "0.0780", "77.5", "DiGress"]
    assert _columns(lines[-2])[1:4] == ["-", "-", "95.0"]  # DeFoG (50 steps): V.U.N. only
    assert set(lines[1]) == {"|", "-", ":"}


def test_format_table_default_columns_and_value_forms():
    rows = reference_rows("kernels") + reference_rows("geom_drugs_corrected")
    table = format_table([], rows)
    head = _columns(table.splitlines()[0])
    assert head == ["method", "speedup (x)", "peak_memory_reduction (x)", "mol_stable_corrected (%)", "source"]
    body = {_columns(ln)[0]: _columns(ln) for ln in table.splitlines()[2:]}
    assert body["Fused3S (H100)"][1] == "1.6–16.3"
    assert body["IO-aware GNN layers (GATv2)"][1:3] == ["up to 8.5", "up to 76"]
    assert body["FlashBias (attention with additive bias, Triton)"][1] == ">2"
    assert body["SemlaFlow"][3] == "96.9 ± 1.2"
    assert body["SemlaFlow"][-1] == "GEOM-Drugs Revisited (Nikitin et al.), 2025 [2]"


def test_format_table_mixed_units_convert_to_the_first_published_unit():
    # MOSES prints the scaffold similarity in percent, the MOSES "Train" row as a fraction
    rows = reference_rows("moses") + reference_rows("moses_train")
    lines = format_table([{"method": "ours", "metrics": {"scaf": 0.123}}], rows, ["scaf"]).splitlines()
    assert _columns(lines[0])[1] == "scaf (%)"
    cells = {_columns(ln)[0]: _columns(ln)[1] for ln in lines[2:]}
    assert cells == {"ours": "12.3", "DiGress": "14.8", "DeFoG (500 steps)": "14.4", "PARD": "-", "Train": "99.1",
                     "Train (10k subset)": "-"}


def test_format_table_rejects_units_that_do_not_convert():
    with pytest.raises(DataError, match=r"metric 'degree': row 'ours' \(ours\) is in percent, the column in mmd2"):
        format_table([{"method": "ours", "metrics": {"degree": 1.0}, "units": {"degree": "percent"}}],
                     reference_rows("planar"), ["degree"])
    with pytest.raises(DataError, match=r"our row 'ours': metric 'fcd' = '1.2' is not a number"):
        format_table([{"method": "ours", "metrics": {"fcd": "1.2"}}], [], ["fcd"])
    with pytest.raises(DataError, match="expected a mapping with 'method' and 'metrics'"):
        format_table([{"name": "ours"}], [], ["fcd"])


def test_format_value():
    assert format_value(None) == "-"
    assert format_value(0.123456) == "0.1235"
    assert format_value(0.5, scale=100.0) == "50"
    assert format_value(Published("90.0")) == "90.0"
    assert format_value(Published("90.0"), scale=0.01) == "0.9"
    assert format_value({"value": 0.65, "qualifier": "about"}) == "≈0.65"
    assert format_value({"value": 2.16, "qualifier": "average"}) == "2.16 (avg)"
    assert format_value(3.2e-6) == "3.20e-06"


def test_metrics_from_result_names_match_the_references():
    graphs = {"kind": "graphs", "mmd": {"stats": {"degree": {"mmd2": 0.01}, "orbit": {"mmd2": None}}},
              "vun": {"vun": 0.25, "valid": 0.5, "unique": 1.0, "novel": 1.0, "num_graphs": 4}}
    assert metrics_from_result(graphs) == {"degree": 0.01, "vun": 0.25, "valid": 0.5, "unique": 1.0, "novel": 1.0}
    mols = {"kind": "molecules", "n_samples": 10, "n_valid": 9, "validity": 0.9, "validity_strict": 0.9,
            "uniqueness": 1.0, "fcd": 2.5, "nspdk": None, "seconds": 3.0, "settings": {}}
    flat = metrics_from_result(mols)
    assert flat == {"validity": 0.9, "validity_strict": 0.9, "uniqueness": 1.0, "fcd": 2.5}
    table = format_table([{"method": "ours", "metrics": flat}], reference_rows("qm9"), ["validity_strict", "fcd"])
    assert _columns(table.splitlines()[2]) == ["ours", "90", "2.5", "graphdiff"]
