"""Released checkpoints of the papers' own code as graphdiff checkpoint folders (``graphdiff import-checkpoint``).

- ``gdss``: the GDSS authors' ``.pth`` files (:mod:`.gdss`), converted tensor for tensor into a ``gdss`` model with
  the checkpoint's own schema and the paper's sampler settings.
- ``digress`` / ``defog``: Lightning ``.ckpt`` files of DiGress and DeFoG (:mod:`.lightning`), loaded tensor for
  tensor into ``digress_transformer`` (the authors' network under their names, with their input features), with
  the checkpoint's schema and the authors' sampler settings; a missing, extra or misshapen tensor is named.

Every file is read with the restricted unpickler (:func:`graphdiff.data.safe_pickle.safe_load_torch`): nothing in
it is imported or executed.
"""

from __future__ import annotations

from pathlib import Path

from ...checks import check_choice

FORMATS = ("gdss", "digress", "defog")


def import_checkpoint(path, format: str, out, *, dataset: str | None = None, root=None) -> dict:
    """Convert the checkpoint ``path`` written by the authors' code into the checkpoint folder ``out``.

    Args:
        path: the authors' file (``.pth`` for GDSS, ``.ckpt`` for DiGress/DeFoG).
        format: ``"gdss"``, ``"digress"`` or ``"defog"``.
        out: the checkpoint folder to write (loadable with ``GraphDiffusionPipeline.from_pretrained``).
        dataset: our dataset whose training split gives the node-count histogram (default: the checkpoint's
            dataset under our name); a registered name or a custom file.
        root: dataset root.

    Returns:
        A summary: the format, the dataset, the tensors loaded and the ones left out as unused, the sampler.

    Raises:
        CheckpointError: a file that is not such a checkpoint, a refused pickle global or a tensor that does not
            map; one line naming the file and the key or tensor.
    """
    from ...errors import CheckpointError

    check_choice(format, FORMATS, "checkpoint format")
    path, out = Path(path), Path(out)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the authors' checkpoint file (.pth or .ckpt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    from ...train.checkpoint import check_replaceable

    check_replaceable(out)  # before reading: a folder of other files is refused, not replaced
    if format == "gdss":
        from .gdss import convert

        return convert(path, out, dataset=dataset, root=root)
    from .lightning import convert

    return convert(path, out, fmt=format, dataset=dataset, root=root)


__all__ = ["FORMATS", "import_checkpoint"]
