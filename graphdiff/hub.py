"""Named pretrained models: the ones bundled with the package, and where a name, folder, URL or Hub id leads.

A model is a checkpoint folder (``config.json`` + ``model.safetensors``) with a model card (``README.md``: how it
was trained and what it measured). Bundled models live in ``graphdiff/pretrained/<name>/`` and are listed in
``graphdiff/pretrained/index.yaml``; an index entry may instead give a ``url`` (a ``.tar.gz`` or ``.zip`` of the
folder) and its ``sha256``, downloaded once into ``<cache>/models/<name>/``.

:func:`resolve_model` turns what a user passes to ``from_pretrained`` / ``--model`` into a local folder:

- an existing folder (a checkpoint or a run folder holding ``checkpoint/``): itself;
- a bundled or indexed name (``graphdiff models list``): its folder, downloaded first if it is remote;
- ``https://...#sha256=<hex>``: an archive, downloaded into the cache and checked;
- ``hf:<owner>/<repo>[@revision]``: a Hugging Face Hub snapshot (needs ``pip install huggingface_hub``), with
  ``sha256=`` checking ``model.safetensors``.

``sha256=`` is the archive's hash for a URL and the weights' (``model.safetensors``) for a Hub id, a folder or a
bundled name; a mismatch is a :class:`~graphdiff.errors.ChecksumError`. Anything else is a one-line error that
lists the model names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .checks import suggest
from .errors import CheckpointError, ChecksumError

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
INDEX = PRETRAINED_DIR / "index.yaml"
CARD = "README.md"
URL_PREFIXES = ("https://", "http://", "file://")  # a model archive to download (with its sha256)
REMOTE_PREFIXES = (*URL_PREFIXES, "hf:")  # ... or a Hugging Face Hub id


@dataclass(frozen=True)
class ModelEntry:
    """One named model of the index.

    Attributes:
        name: what ``from_pretrained`` / ``--model`` accept.
        description: one line for ``graphdiff models list``.
        path: the bundled folder (``None`` for a remote model).
        url: archive to download (remote models).
        sha256: of the archive (remote models).
        task: ``molecules``, ``molecules_3d``, ``graphs``, ``timeseries`` or ``images``.
        process: the diffusion process (``defog``, ``digress``, ``gdss``, ``pard``, ``edm``, ...).
        dataset: what it was trained on.
        reference: the packed molecule reference its samples are scored against without the dataset
            (:mod:`graphdiff.metrics.packed_reference`), when bundled.
    """

    name: str
    description: str
    path: Path | None = None
    url: str | None = None
    sha256: str | None = None
    task: str = "molecules"
    process: str = ""
    dataset: str = ""
    reference: Path | None = None

    @property
    def bundled(self) -> bool:
        return self.path is not None


def model_index() -> dict[str, ModelEntry]:
    """The named models, in the index's order."""
    from . import yamlio

    if not INDEX.is_file():
        return {}
    with open(INDEX, encoding="utf-8") as fh:
        raw = yamlio.load(fh) or {}
    out = {}
    for name, d in (raw.get("models") or {}).items():
        d = dict(d or {})
        folder, ref = d.pop("folder", None), d.pop("reference", None)
        out[name] = ModelEntry(name=name, path=(PRETRAINED_DIR / folder) if folder else None,
                               reference=(PRETRAINED_DIR / ref) if ref else None, **d)
    return out


def model_names() -> list[str]:
    return list(model_index())


def models_cache() -> Path:
    """Where downloaded models go: ``$GRAPHDIFF_MODELS``, else ``<data root>/models``."""
    from .data.base import data_root

    env = os.environ.get("GRAPHDIFF_MODELS")
    return Path(env) if env else data_root() / "models"


def _unknown(name: str) -> CheckpointError:
    names = model_names()
    listing = ", ".join(names) if names else "none bundled"
    return CheckpointError(f"{name!r} is neither a checkpoint folder nor a model name{suggest(name, names)}; "
                           f"models: {listing} (graphdiff models list)")


def resolve_model(spec: str | os.PathLike, *, sha256: str | None = None, cache: str | os.PathLike | None = None
                  ) -> Path:
    """The local folder for a model name, folder, URL or ``hf:`` id (see the module docstring). For a folder or a
    bundled model, ``sha256`` is checked against its weights' (:func:`model_sha256`, the lineage records' hash)."""
    if not isinstance(spec, (str, os.PathLike)):
        raise CheckpointError(f"a model is a name, a folder, a URL or an hf: id, got {spec!r}")
    text = str(spec)
    path = Path(spec).expanduser()
    if path.exists():
        return _check_local(path, sha256)
    cache = Path(cache) if cache is not None else models_cache()
    if text.startswith(URL_PREFIXES):
        url, _, frag = text.partition("#")
        want = sha256 or (frag[len("sha256="):] if frag.startswith("sha256=") else None)
        if not want:
            raise CheckpointError(f"{url}: a model URL needs its sha256 (append #sha256=<hex> or pass sha256=)")
        return download_model(url, want, cache / f"url-{want[:16]}")
    if text.startswith("hf:"):
        return _hub_snapshot(text[3:], cache, sha256)
    entry = model_index().get(text)
    if entry is None:
        raise _unknown(text)
    if entry.bundled:
        if not (entry.path / "config.json").is_file():
            raise CheckpointError(f"bundled model {text!r}: {entry.path} holds no config.json (broken install?)")
        return _check_local(entry.path, sha256)
    return download_model(entry.url, entry.sha256, cache / text)


def _check_local(path: Path, sha256: str | None) -> Path:
    if sha256 is not None:
        got = model_sha256(path)
        if got != str(sha256).lower():
            raise ChecksumError(f"{path}: the weights' sha256 is {got}, not {sha256}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_extract(archive: Path, dest: Path) -> None:
    """Unpack a ``.tar(.gz)`` or ``.zip`` into ``dest``, refusing members that leave it or are links."""
    dest = dest.resolve()

    def inside(name: str) -> bool:
        target = (dest / name).resolve()
        return target == dest or dest in target.parents

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for m in z.infolist():
                if not inside(m.filename):
                    raise CheckpointError(f"{archive}: member {m.filename!r} lies outside the model folder")
            z.extractall(dest)
        return
    try:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if not inside(m.name) or not (m.isfile() or m.isdir()):
                    raise CheckpointError(f"{archive}: member {m.name!r} is a link or lies outside the model folder")
            t.extractall(dest)
    except tarfile.TarError as exc:
        raise CheckpointError(f"{archive}: not a .tar.gz or .zip model archive ({exc})") from None


def download_model(url: str, sha256: str | None, folder: Path) -> Path:
    """``folder`` holding the model archived at ``url`` (downloaded and checked once; kept afterwards)."""
    from .data.base import _download

    done = folder / ".sha256"
    if done.is_file() and done.read_text().strip() == sha256:
        return _model_root(folder)
    if not sha256:
        raise CheckpointError(f"{url}: no sha256 to check the download against")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        archive = tmp / "model.archive"
        if url.startswith("file://"):
            shutil.copyfile(url[len("file://"):], archive)
        else:
            _download(url, archive)
        got = _sha256(archive)
        if got != sha256.lower():
            raise ChecksumError(f"{url}: sha256 {got[:16]}... does not match the expected {sha256[:16]}...")
        unpacked = tmp / "model"
        _safe_extract(archive, unpacked)
        archive.unlink()
        (unpacked / ".sha256").write_text(sha256.lower())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(unpacked, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _model_root(folder)


def _model_root(folder: Path) -> Path:
    """The folder itself, or its single subfolder when the archive held one top-level folder."""
    if (folder / "config.json").is_file() or (folder / "checkpoint").is_dir():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subs) == 1:
        return subs[0]
    raise CheckpointError(f"{folder}: the downloaded archive holds no model folder (no config.json)")


def _hub_snapshot(repo: str, cache: Path, sha256: str | None) -> Path:
    repo_id, _, revision = repo.partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"hf:{repo}: Hugging Face Hub models need `pip install huggingface_hub`") from None
    try:
        local = Path(snapshot_download(repo_id, revision=revision or None, cache_dir=str(cache / "hf"),
                                       allow_patterns=["config.json", "*.safetensors", "README.md"]))
    except Exception as exc:  # network, missing repo, auth: one line
        raise CheckpointError(f"hf:{repo}: cannot download ({type(exc).__name__}: {exc})") from None
    if sha256:
        got = _sha256(local / "model.safetensors")
        if got != sha256.lower():
            raise ChecksumError(f"hf:{repo}: model.safetensors sha256 {got[:16]}... is not {sha256[:16]}...")
    return local


def read_card(folder: Path) -> str:
    """The model card text of a folder (or of its ``checkpoint/``), empty when it has none."""
    for p in (Path(folder) / CARD, Path(folder).parent / CARD):
        if p.is_file():
            return p.read_text(encoding="utf-8")
    return ""


def model_sha256(folder: Path) -> str:
    """sha256 of a model folder's weights (``model.safetensors``), for lineage records."""
    from .train.checkpoint import MODEL, resolve_checkpoint

    return _sha256(resolve_checkpoint(folder) / MODEL)
