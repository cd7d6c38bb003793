"""Fixtures of the trainer tests: one small generated training set shared by the whole session."""

from __future__ import annotations

import pytest

from .toys import load_train_set


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A dataset root holding the generated ``synth_community_small`` (no network)."""
    root = tmp_path_factory.mktemp("train_data")
    load_train_set(root)
    return root


@pytest.fixture(scope="session")
def train_set(data_root):
    return load_train_set(data_root)
