"""Errors that users see as one line.

Every error raised on bad user input derives from :class:`GraphdiffError`. The CLI prints ``error: <message>``
for these and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class GraphdiffError(Exception):
    """Base class for one-line, user-facing errors."""


class DataError(GraphdiffError, ValueError):
    """Bad input data: a malformed file, row, graph or field. The message names file, line/field and value."""


class SchemaError(GraphdiffError, ValueError):
    """Data that the schema cannot represent (an unknown category, a graph larger than max_nodes, ...)."""


class ChecksumError(DataError):
    """A raw file whose sha256 does not match its dataset card."""


class MissingFileError(GraphdiffError, FileNotFoundError):
    """A raw file that is neither present nor downloadable."""


class ConfigError(GraphdiffError, ValueError):
    """A preset or configuration with an unknown key or a bad value; the message names the key and the file."""


class CheckpointError(GraphdiffError):
    """A checkpoint folder with a missing, corrupted or incompatible file; the message names the file."""


class TrainingError(GraphdiffError, RuntimeError):
    """Training that cannot go on (a NaN loss, an empty training set); the message says at which step."""
