"""Diffusion processes: how noise is added to a GraphState and how a step is reversed.

Every process has ``name``, ``loss(denoiser, batch, *, generator) -> [B]``, ``prior(n_nodes, *, generator)``,
``encode`` / ``decode`` between data states and the process's own state, and ``to_dict()`` (what
``config.json`` stores to rebuild it).
"""

from __future__ import annotations

from ..checks import check_kwargs, suggest
from ..errors import ConfigError
from .pard import BlockAutoregressive
from .digress import DiscreteDiffusion
from .defog import DiscreteFlowMatching
from .gdss import GDSSProcess
from .eqgat_diff import EQGATDiffusion
from .semlaflow import MolecularFlowMatching
from .edm import EDMProcess
from .pfgm import PFGMPPProcess
from .score_sde import FixedGraphSDE
from .sde import SDES, SubVPSDE, VESDE, VPSDE, build_sde

PROCESSES = {"gdss": GDSSProcess, "digress": DiscreteDiffusion, "defog": DiscreteFlowMatching,
             "pard": BlockAutoregressive, "eqgat_diff": EQGATDiffusion, "semlaflow": MolecularFlowMatching,
             "edm": EDMProcess, "pfgm": PFGMPPProcess,
             "score_sde": FixedGraphSDE}


def process_class(name: str):
    if name not in PROCESSES:
        raise ConfigError(f"process.name: unknown process {name!r}{suggest(name, PROCESSES)}; known: "
                          f"{sorted(PROCESSES)}")
    return PROCESSES[name]


def build_process(spec: dict, schema, *, where: str = "process"):
    """A process from its spec (``{"name": ..., **kwargs}``), rejecting unknown keys by name."""
    spec = dict(spec)
    cls = process_class(spec.pop("name", None))
    check_kwargs(cls, spec, where, skip=("schema",))
    return cls(schema, **spec)


__all__ = ["GDSSProcess", "DiscreteDiffusion", "DiscreteFlowMatching", "BlockAutoregressive", "EQGATDiffusion",
           "MolecularFlowMatching", "EDMProcess", "PFGMPPProcess", "FixedGraphSDE", "PROCESSES",
           "build_process", "process_class", "build_sde", "SDES", "VPSDE", "VESDE", "SubVPSDE"]
