"""Adapters: regular data (images, time series) as GraphStates on a FIXED graph, run by the same engine.

The fixed-graph contract (what every adapter produces and every fixed-graph process / denoiser reads):

* ``x`` ``[B, N, C]`` float: the continuous values, one channel per variable (images: intensities scaled to
  [-1, 1]; series: the adapter's scaling). The only field a process diffuses.
* ``e`` ``[B, N, N, Fe]``: the fixed adjacency as one-hot edge kinds, channel 0 = no edge (grid: ``neighbour``, or
  ``axial`` + ``diagonal``; path: lags). Data, never diffused: processes copy it from input to output.
* ``pos`` ``[B, N, 3]``: node coordinates for positional / time features (images: row, column in [-1, 1]).
  Fixed-graph processes never call ``GraphState.masked()`` (which would centre it); they multiply ``x`` by ``mask``.
* ``mask`` ``[B, N]``: real node slots (padding of variable-length series). Missing VALUES are not in the state:
  :meth:`FixedGraphAdapter.observation` returns ``(values [B, N, C], observed [B, N, C] bool)`` for guidance
  (``pipe.sample(n, guide="self", observed=values, observed_mask=observed)``).
* ``y`` ``[B, Fy]`` or ``None``: graph-level conditions (class one-hot of class-conditional images).
* the schema records the geometry: ``schema.extra["fixed_graph"] = {"adapter": kind, **kwargs}``, with
  ``node_categories = ()`` and ``node_continuous`` naming the channels; :func:`adapter_from_schema` rebuilds the
  adapter, so a checkpoint needs nothing else.

Processes that read the contract: :class:`graphdiff.processes.edm.EDMProcess`,
:class:`graphdiff.processes.pfgm.PFGMPPProcess` and the VP/VE SDEs (:class:`graphdiff.processes.edm.SDEProcess`);
the denoiser :class:`graphdiff.nn.grid.GridDenoiser` passes messages along ``e`` (edges of batch item 0: the
graph is the same for every item) with features of ``pos``. A new adapter subclasses :class:`FixedGraphAdapter`
and registers itself with :func:`register_adapter` (``kind`` is its key).
"""

from __future__ import annotations

from .base import ADAPTERS, FixedGraphAdapter, adapter_from_schema, fixed_graph_spec, register_adapter
from .grid import ImageGrid, save_image_grid
from .series import TimeSeriesPath

__all__ = ["ADAPTERS", "FixedGraphAdapter", "ImageGrid", "adapter_from_schema", "fixed_graph_spec",
           "register_adapter", "save_image_grid", "TimeSeriesPath"]
