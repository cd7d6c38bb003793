"""The package version (one place; read by checkpoints and `graphdiff --version`)."""

__version__ = "0.1.0"
