"""Bad files on every CLI entry point that reads one: a one-line ``error: ...`` naming the file, exit status 2,
no traceback, no processed cache left behind.

Each test writes its file into ``tmp_path`` and calls the real ``graphdiff.cli.main``; ``train`` fails while
loading the dataset, before any model is built.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re

import pytest
import torch
from rdkit import Chem

from graphdiff.cli import main

# distinct molecules with seeded random names: a gzip of them is long enough to be cut in the middle of the stream
_RNG = random.Random(0)
SMILES = [f"{'C' * _RNG.randint(1, 6)}{_RNG.choice('NOS')}{_RNG.choice(['c1ccccc1', 'C(=O)O', 'C#N', 'CCl'])}"
          for _ in range(80)]
NAMES = [f"{_RNG.getrandbits(48):012x}" for _ in SMILES]


def _valid_bytes(ext: str) -> bytes:
    """A valid file of the given kind."""
    if ext == ".smi":
        return "".join(f"{s} {n}\n" for s, n in zip(SMILES, NAMES)).encode()
    if ext == ".csv":
        return ("id,smiles\n" + "".join(f"{n},{s}\n" for s, n in zip(SMILES, NAMES))).encode()
    if ext == ".jsonl":
        rng = random.Random(1)
        return "".join(json.dumps({"num_nodes": 8, "edges": [[rng.randrange(4), rng.randrange(4, 8)]
                                                              for _ in range(3)]}) + "\n" for _ in SMILES).encode()
    if ext == ".sdf":
        out = io.StringIO()
        with Chem.SDWriter(out) as w:
            for s, n in zip(SMILES, NAMES):
                m = Chem.MolFromSmiles(s)
                m.SetProp("_Name", n)
                w.write(m)
        return out.getvalue().encode()
    raise ValueError(ext)


def _non_utf8(ext: str) -> bytes:
    """A text file whose second line holds a Latin-1 byte (0xE9, 'é')."""
    first = {".csv": "smiles", ".jsonl": '{"num_nodes": 2, "edges": [[0, 1]]}'}.get(ext, "CCO")
    second = '{"num_nodes": 2, "edges": [[0, 1]], "node_labels": ["\xe9", "a"]}' if ext == ".jsonl" else "CC\xe9"
    return f"{first}\n{second}\n".encode("latin-1")


def write_bad(tmp_path, kind: str, ext: str):
    """A bad file of ``kind`` for a reader of ``ext`` files; returns its path."""
    path = tmp_path / f"bad{ext}"
    if kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    elif kind == "truncated_gzip":
        path = tmp_path / f"bad{ext}.gz"
        data = gzip.compress(_valid_bytes(ext))
        assert len(data) > 400
        path.write_bytes(data[: len(data) // 2])
    elif kind == "non_utf8":
        path.write_bytes(_non_utf8(ext))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind != "missing":
        raise ValueError(kind)
    return path


# what the one line must say, beyond the file's name
EXPECTED = {
    "binary": r"binary file \(NUL byte at offset 8\), expected ",
    "truncated_gzip": r"truncated or corrupt gzip \(Compressed file ended before the end-of-stream marker was "
                      r"reached\) after \d+ decompressed lines",
    "non_utf8": r"line 2: not UTF-8 text \(byte 0xe9 at column \d+ in '.*'\)",
    "empty": r"empty file, expected ",
    "directory": r"is a directory, expected ",
    "missing": r"no such file",
}
KINDS = list(EXPECTED)


def _tiny_molecules(tmp_path):
    f = tmp_path / "ref.smi"
    f.write_text("CCO\nc1ccccc1\nCCN\nCC(=O)O\nCCCC\n")
    return f


def _command(entry: str, path, tmp_path) -> list[str]:
    root = str(tmp_path / "root")
    if entry == "evaluate":
        return ["evaluate", "--samples", str(path), "--dataset", str(_tiny_molecules(tmp_path)), "--root", root,
                "--bootstrap", "0", "--subsets", "0"]
    if entry in ("prepare", "info"):
        return ["datasets", entry, str(path), "--root", root]
    if entry == "train":
        return ["train", "--preset", "gdss-demo", "--dataset", str(path), "--root", root, "--out",
                str(tmp_path / "run"), "--quiet"]
    raise ValueError(entry)


ENTRIES = [("evaluate", ".smi"), ("evaluate", ".jsonl")] + [
    (entry, ext) for entry in ("prepare", "info", "train") for ext in (".smi", ".csv", ".sdf", ".jsonl")]


def _one_line_error(capsys, path) -> str:
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "Traceback" not in cap.out
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    assert lines[0].startswith(f"error: {path}"), lines[0]
    return lines[0]


@pytest.mark.parametrize("entry,ext", ENTRIES, ids=[f"{e}-{x[1:]}" for e, x in ENTRIES])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_file_is_one_line_error(tmp_path, capsys, kind, entry, ext):
    path = write_bad(tmp_path, kind, ext)
    assert main(_command(entry, path, tmp_path)) == 2
    line = _one_line_error(capsys, path)
    if kind == "non_utf8" and ext == ".sdf":
        # RDKit reads SDF records as bytes: this "SDF" holds no record it can read, which is what is reported
        assert re.search(r"no valid rows \(1 invalid; first: record 1: RDKit cannot read this record\)", line)
    else:
        assert re.search(EXPECTED[kind], line), line
    # nothing half-written: no processed cache of the bad file, no run folder
    assert not [p for p in (tmp_path / "root").rglob("*") if "custom/bad" in str(p)]
    assert not (tmp_path / "run").exists()


def test_non_utf8_message_names_line_column_and_byte(tmp_path, capsys):
    f = tmp_path / "latin.smi"
    f.write_bytes("CCO\nc1ccccc1\nCC(=O)N\u00e9thyl\n".encode("latin-1"))
    assert main(["datasets", "prepare", str(f), "--root", str(tmp_path / "root")]) == 2
    assert _one_line_error(capsys, f) == (f"error: {f}: line 3: not UTF-8 text (byte 0xe9 at column 8 in "
                                          "'CC(=O)N\ufffdthyl')")


def test_truncated_gzip_counts_the_lines_before_the_cut(tmp_path, capsys):
    rows = [f"{s}.{'C' * (i % 11)}" for i, s in enumerate(SMILES * 40)]
    data = gzip.compress(("smiles\n" + "\n".join(rows) + "\n").encode())
    f = tmp_path / "mols.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    expected = gzip.GzipFile(fileobj=io.BytesIO(data[: len(data) // 2])).read1(1 << 30).count(b"\n")
    assert 0 < expected < len(rows)
    assert main(["datasets", "info", str(f), "--root", str(tmp_path / "root")]) == 2
    assert _one_line_error(capsys, f).endswith(f"after {expected} decompressed lines")


def test_gzip_is_recognised_by_content_and_gz_samples_are_read(tmp_path, capsys):
    plain = tmp_path / "plain.smi"
    plain.write_bytes(_valid_bytes(".smi"))
    zipped = tmp_path / "zipped.smi"  # gzip content under a plain name
    zipped.write_bytes(gzip.compress(_valid_bytes(".smi")))
    root = str(tmp_path / "root")
    assert main(["datasets", "info", str(plain), "--root", root, "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["datasets", "info", str(zipped), "--root", root, "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["graphs"] == b["graphs"] == len(SMILES) and a["schema"] == b["schema"]
    samples = tmp_path / "samples.smi.gz"
    samples.write_bytes(gzip.compress(b"CCO\nc1ccccc1\n"))
    from graphdiff.metrics.evaluate import read_samples

    assert read_samples(samples) == ("smiles", ["CCO", "c1ccccc1"])


def test_latin1_names_in_sdf_are_accepted(tmp_path, capsys):
    """SDF structures are ASCII; a Latin-1 molecule name (unused) does not make a file unreadable."""
    mols = []
    for s in SMILES[:5]:
        m = Chem.MolFromSmiles(s)
        m.SetProp("_Name", "caf\u00e9")
        mols.append(m)
    out = io.StringIO()
    with Chem.SDWriter(out) as w:
        for m in mols:
            w.write(m)
    f = tmp_path / "names.sdf"
    f.write_bytes(out.getvalue().encode("latin-1"))
    assert main(["datasets", "info", str(f), "--root", str(tmp_path / "root"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["graphs"] == 5


def test_directory_without_suffix_and_missing_path(tmp_path, capsys):
    d = tmp_path / "folder"
    d.mkdir()
    assert main(["datasets", "info", str(d)]) == 2
    assert "a folder without .png files; expected a dataset name, a .smi, .txt, .csv, .sdf, .xyz or .jsonl file" in (
        _one_line_error(capsys, d))
    assert main(["datasets", "prepare", str(tmp_path / "nowhere" / "mols")]) == 2
    assert "no such file (and not a registered dataset name)" in _one_line_error(capsys, tmp_path / "nowhere")
    assert main(["evaluate", "--samples", str(d), "--dataset", str(_tiny_molecules(tmp_path)), "--root",
                 str(tmp_path / "root")]) == 2
    assert "is a directory, expected a .smi or .jsonl sample file" in _one_line_error(capsys, d)


# ---- a registered dataset's raw file: SPECTRE's .pt has no checksum in its card, so the reader itself decides --
def _pt_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save([[torch.ones(4, 4) - torch.eye(4) for _ in range(10)], [], []], buf)
    return buf.getvalue()


PT_EXPECTED = {
    "binary": r"not a PyTorch \.pt file \(it starts with neither a zip header nor a pickle\)",
    "truncated": r"not a readable PyTorch file \(RuntimeError: PytorchStreamReader failed reading zip archive: "
                 r"failed finding central directory\)$",
    "non_utf8": r"not a PyTorch \.pt file",
    "empty": r"empty file, expected a PyTorch \.pt file",
    "directory": r"is a directory \(or not a regular file\), expected the raw file planar_64_200\.pt",
}


@pytest.mark.parametrize("kind", list(PT_EXPECTED))
def test_bad_raw_pt_file(tmp_path, capsys, no_network, kind):
    raw = tmp_path / "planar" / "raw"
    raw.mkdir(parents=True)
    f = raw / "planar_64_200.pt"
    if kind == "binary":
        f.write_bytes(bytes(range(256)))
    elif kind == "truncated":
        data = _pt_bytes()
        f.write_bytes(data[: len(data) // 2])
    elif kind == "non_utf8":
        f.write_bytes("0 1 0\n1 0 \xe9\n".encode("latin-1"))
    elif kind == "empty":
        f.write_bytes(b"")
    else:
        f.mkdir()
    assert main(["datasets", "prepare", "planar", "--root", str(tmp_path)]) == 2
    line = _one_line_error(capsys, f)
    assert re.search(PT_EXPECTED[kind], line), line
    assert not (tmp_path / "planar" / "processed").exists()


def test_valid_raw_pt_file_loads(tmp_path, capsys, no_network):
    raw = tmp_path / "planar" / "raw"
    raw.mkdir(parents=True)
    (raw / "planar_64_200.pt").write_bytes(_pt_bytes())
    assert main(["datasets", "info", "planar", "--root", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["graphs"] == 10 and out["schema"]["max_nodes"] == 4


@pytest.mark.parametrize("ext", [".csv", ".smi", ".jsonl"])
def test_a_byte_order_mark_as_excel_writes_is_read_like_plain_utf8(tmp_path, capsys, ext):
    plain, bom = tmp_path / f"plain{ext}", tmp_path / f"bom{ext}"
    plain.write_bytes(_valid_bytes(ext))
    bom.write_bytes(b"\xef\xbb\xbf" + _valid_bytes(ext).replace(b"\n", b"\r\n"))
    for f in (plain, bom):
        assert main(["datasets", "info", str(f), "--root", str(tmp_path / "root"), "--json"]) == 0
    a, b = (json.loads(chunk) for chunk in re.findall(r"^\{.*?^\}", capsys.readouterr().out, re.S | re.M))
    assert a["graphs"] == b["graphs"] == len(SMILES) and a.get("invalid_rows") == b.get("invalid_rows")


def test_a_series_csv_with_a_byte_order_mark_forecasts(tmp_path, capsys):
    ctx = tmp_path / "ctx.csv"
    ctx.write_bytes(b"\xef\xbb\xbfdate,sales\r\n" + b"".join(f"2020-{m:02d}-01,{m}\r\n".encode() for m in range(1, 13)))
    out = tmp_path / "f.csv"
    assert main(["forecast", "--model", "seasonal_naive", "--context", str(ctx), "--horizon", "2", "--season", "1",
                 "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1].startswith("2021-01,sales,12")
