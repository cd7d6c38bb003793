"""YAML reading with YAML 1.2 numbers: ``1e-4`` is a float, not the string PyYAML's 1.1 rules make of it.

PyYAML follows YAML 1.1, whose float pattern needs a dot (``1.0e-4``), so ``--set finetune.lr=1e-4`` or
``lr: 1e-4`` in a preset used to arrive as the string ``'1e-4'``. :class:`Loader` adds the 1.2 pattern
(a mantissa with or without a dot, then an exponent); everything else is PyYAML's safe loader.
"""

from __future__ import annotations

import re

import yaml


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-4``, ``5E+3`` and ``-2e0`` as floats."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789."))


def load(text):
    """Parse one YAML document (a string or a readable stream) with :class:`Loader`."""
    return yaml.load(text, Loader=Loader)
