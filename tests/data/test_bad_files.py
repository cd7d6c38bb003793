"""Bad raw files and damaged caches: the readers of the registered datasets and :mod:`graphdiff.data.files`.

The CLI side (custom files, sample files, SPECTRE's .pt) is in ``tests/test_cli_bad_files.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle

import networkx as nx
import numpy as np
import pytest

from graphdiff.data import load_dataset
from graphdiff.data.base import RawFile
from graphdiff.data.files import open_binary, open_text, read_text
from graphdiff.data.graphs import CommunitySmall
from graphdiff.data.molecules import QM9
from graphdiff.data.store import GraphStore
from graphdiff.errors import DataError, GraphdiffError, MissingFileError

QM9_ROWS = "smiles\n" + "".join(f"{'C' * (1 + i % 6)}{'ONS'[i % 3]}\n" for i in range(300))
KINDS = ["binary", "truncated_gzip", "non_utf8", "empty", "directory"]


def _write(path, kind: str, valid: bytes) -> None:
    if kind == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    elif kind == "truncated_gzip":
        data = gzip.compress(valid)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "non_utf8":
        path.write_bytes(valid[:20] + b"\n\xff\xfeC\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()


MESSAGES = {
    "binary": "binary file (NUL byte at offset 7), expected ",
    "truncated_gzip": "truncated or corrupt gzip (Compressed file ended before the end-of-stream marker",
    "non_utf8": "not UTF-8 text (byte 0xff at column 1 in",
    "empty": "empty file, expected ",
    "directory": "is a directory (or not a regular file), expected the raw file ",
}


class TinyQM9(QM9):
    """QM9's reader on test files without checksums."""

    def raw_choices(self, role):
        return [RawFile({"smiles": "smiles.csv", "test_index": "test.json"}[role])]


def _qm9_root(tmp_path, smiles: bytes | None = None, index: bytes | None = None):
    raw = tmp_path / "qm9" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "smiles.csv").write_bytes(QM9_ROWS.encode() if smiles is None else smiles)
    (raw / "test.json").write_bytes(json.dumps({"valid_idxs": ["000001"]}).encode() if index is None else index)
    return tmp_path


def _one_line(exc: BaseException, path) -> str:
    msg = str(exc)
    assert isinstance(exc, GraphdiffError) and "\n" not in msg and msg.startswith(str(path)), msg
    return msg


# ---- molecule CSV and test-index JSON ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_bad_molecule_csv(tmp_path, kind, no_network):
    root = _qm9_root(tmp_path)
    f = root / "qm9" / "raw" / "smiles.csv"
    f.unlink()
    _write(f, kind, QM9_ROWS.encode())
    with pytest.raises(GraphdiffError) as info:
        TinyQM9(root=root, workers=1)
    msg = _one_line(info.value, f)
    assert MESSAGES[kind] in msg
    if kind == "non_utf8":
        assert ": line 6: " in msg  # the header, four rows and a cut one (the first 20 bytes), then the bad bytes
    assert not (root / "qm9" / "processed").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_test_index(tmp_path, kind, no_network):
    root = _qm9_root(tmp_path)
    f = root / "qm9" / "raw" / "test.json"
    f.unlink()
    _write(f, kind, json.dumps({"valid_idxs": [str(i).zfill(6) for i in range(200)]}).encode())
    with pytest.raises(GraphdiffError) as info:
        TinyQM9(root=root, workers=1)
    assert MESSAGES[kind] in _one_line(info.value, f)


def test_test_index_that_is_not_json(tmp_path, no_network):
    root = _qm9_root(tmp_path, index=b'{"valid_idxs": [1, 2,\n 3 4]}')
    with pytest.raises(DataError, match=r"test\.json: line 2: invalid JSON \(Expecting ',' delimiter at column 4\)"):
        TinyQM9(root=root, workers=1)


def test_valid_gzip_under_a_plain_name_equals_the_plain_file(tmp_path, no_network):
    plain = TinyQM9(root=_qm9_root(tmp_path / "a"), workers=1)
    zipped = TinyQM9(root=_qm9_root(tmp_path / "b", smiles=gzip.compress(QM9_ROWS.encode())), workers=1)
    for name in ("node_ptr", "node_type", "edge_ptr", "edge_index", "edge_type", "split"):
        assert np.array_equal(getattr(plain.store, name), getattr(zipped.store, name)), name
    assert len(plain) == 300 and plain.schema == zipped.schema


# ---- GDSS pickles --------------------------------------------------------------------------------------------
class TinyCommunity(CommunitySmall):
    def raw_choices(self):
        return [RawFile("graphs.pkl")]


PICKLE_MESSAGES = {**MESSAGES, "empty": "empty file, expected a pickle",
                   **{k: "not a readable graph pickle (" for k in ("binary", "truncated_gzip", "non_utf8")}}


@pytest.mark.parametrize("kind", KINDS)
def test_bad_graph_pickle(tmp_path, kind, no_network):
    raw = tmp_path / "community_small" / "raw"
    raw.mkdir(parents=True)
    f = raw / "graphs.pkl"
    valid = pickle.dumps([nx.cycle_graph(5 + i) for i in range(30)])
    if kind == "truncated_gzip":  # a pickle cut in the middle (pickles are not gzipped)
        f.write_bytes(valid[: len(valid) // 2])
    else:
        _write(f, kind, valid)
    with pytest.raises(GraphdiffError) as info:
        TinyCommunity(root=tmp_path)
    assert PICKLE_MESSAGES[kind] in _one_line(info.value, f)
    assert not (tmp_path / "community_small" / "processed").exists()


# ---- caches: never half-written, never trusted when damaged ---------------------------------------------------
def _smi(tmp_path):
    f = tmp_path / "mols.smi"
    f.write_text("CCO\nc1ccccc1\nCCN\nCC(=O)O\nCCCC\n")
    return f


def test_failed_rebuild_keeps_the_old_cache(tmp_path, no_network):
    root = _qm9_root(tmp_path)
    first = TinyQM9(root=root, workers=1)
    (root / "qm9" / "raw" / "smiles.csv").write_bytes(b"smiles\nCC\n\xff\n")
    with pytest.raises(DataError, match="not UTF-8"):
        TinyQM9(root=root, workers=1, force_reload=True)
    again = TinyQM9(root=root, workers=1)
    assert not again.processed_now and len(again) == len(first) == 300


def test_truncated_store_array_is_rebuilt(tmp_path):
    f = _smi(tmp_path)
    ds = load_dataset(str(f), root=tmp_path / "root")
    expected = np.array(ds.store.edge_index)
    arr = ds.processed_dir / "store" / "edge_index.npy"
    arr.write_bytes(arr.read_bytes()[:-3])  # a write cut short
    with pytest.raises(DataError, match=r"edge_index\.npy: unreadable"):
        GraphStore.load(ds.processed_dir / "store")
    again = load_dataset(str(f), root=tmp_path / "root")
    assert again.processed_now and len(again) == len(ds) == 5
    assert np.array_equal(np.asarray(again.store.edge_index), expected)


def test_store_arrays_of_disagreeing_lengths_are_refused(tmp_path):
    ds = load_dataset(str(_smi(tmp_path)), root=tmp_path / "root")
    store = ds.processed_dir / "store"
    np.save(store / "node_type.npy", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"node_type\.npy: 3 rows, the pointers say \d+"):
        GraphStore.load(store)


def test_unreadable_meta_json_is_rebuilt(tmp_path):
    f = _smi(tmp_path)
    ds = load_dataset(str(f), root=tmp_path / "root")
    (ds.processed_dir / "meta.json").write_bytes(b"\xff\xfe{garbage")
    again = load_dataset(str(f), root=tmp_path / "root")
    assert again.processed_now and len(again) == 5


def test_interrupted_build_leaves_no_valid_cache(tmp_path, monkeypatch):
    f = _smi(tmp_path)
    ds = load_dataset(str(f), root=tmp_path / "root")
    save = GraphStore.save

    def save_then_die(self, directory):
        save(self, directory)
        raise KeyboardInterrupt  # killed after the store, before meta.json

    monkeypatch.setattr(GraphStore, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(str(f), root=tmp_path / "root", force_reload=True)
    assert not (ds.processed_dir / "meta.json").exists()
    monkeypatch.setattr(GraphStore, "save", save)
    again = load_dataset(str(f), root=tmp_path / "root")
    assert again.processed_now and len(again) == 5


# ---- graphdiff.data.files ---------------------------------------------------------------------------------------
def test_open_text_keeps_line_endings_and_reads_valid_text_unchanged(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes("é,1\r\nb,2\n".encode())
    with open_text(f) as fh:
        assert list(fh) == ["é,1\r\n", "b,2\n"]
    assert read_text(f) == "é,1\nb,2\n"


def test_non_utf8_after_the_first_block_names_its_line(tmp_path):
    f = tmp_path / "big.smi"
    f.write_bytes(b"CCO\n" * 5000 + b"CC\xc3(N)\n")
    with pytest.raises(DataError, match=r"big\.smi: line 5001: not UTF-8 text \(byte 0xc3 at column 3 in "
                                        r"'CC\ufffd\(N\)'\)"):
        with open_text(f) as fh:
            sum(1 for _ in fh)


def test_utf16_and_special_files(tmp_path):
    f = tmp_path / "u16.smi"
    f.write_bytes("CCO\n".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16 text, expected .* in UTF-8"):
        read_text(f, "SMILES text")
    with pytest.raises(MissingFileError, match="nope.smi: no such file"):
        read_text(tmp_path / "nope.smi")
    fifo = tmp_path / "pipe.smi"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="pipe.smi: not a regular file, expected SMILES text"):
        read_text(fifo, "SMILES text")


def test_errors_from_the_reading_code_itself_pass_through(tmp_path):
    f = tmp_path / "ok.txt"
    f.write_text("fine\n")
    with pytest.raises(UnicodeDecodeError):  # not the file's fault: not turned into a file error
        with open_text(f) as fh:
            fh.read()
            b"\xff".decode("utf-8")
    g = tmp_path / "ok.gz"
    g.write_bytes(gzip.compress(b"data\n"))
    with pytest.raises(EOFError):
        with open_binary(g) as fh:
            fh.read()
            raise EOFError("elsewhere")
