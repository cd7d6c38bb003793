"""A multi-domain graph corpus for pre-training one model on many kinds of graphs (dataset ``lggm``).

Follows the protocol of LGGM (Wang et al., "Large Generative Graph Models", 2024): pre-train one DiGress-class
model on graphs from many domains, with the domain as a condition, then fine-tune it to a held-out domain. Our
corpus is built offline from what the package has or generates (card ``datasets/lggm.yaml``):

* generated families (:data:`GENERATED`), fixed seed and count each: Erdos-Renyi, Barabasi-Albert, Watts-Strogatz,
  random geometric, power-law cluster (Holme-Kim), ESGG trees and GRAN lobsters;
* the standard files, one domain each, read by their own loaders (sha256-checked): GDSS community-small, ego-small,
  grid and ENZYMES, SPECTRE planar and SBM;
* molecular skeletons of QM9 and ZINC250k (heavy atoms as nodes, bonds as plain edges, no labels), from a seeded
  sample of the rows of their SMILES files.

A family with a published benchmark file uses the file (so a held-out domain is the benchmark's own graphs),
the others are generated. A domain whose raw file is absent (and cannot be downloaded) is skipped with one line on
stderr; ``info["skipped"]`` records it. Graphs with more than ``max_nodes`` (200) nodes are dropped (only GDSS grids
exceed it); ``per_domain`` keeps a domain's first ``k`` generated graphs, or ``k`` file graphs chosen by a
permutation seeded with the domain's seed. ``family_max_nodes=m`` draws the sizes of the five sized generated
families (:data:`SIZED`) from 16..m nodes instead of 16..128. ``train_limit`` keeps at most ``k`` graphs of each
domain's train split (the first ``k`` of a permutation of its train graphs seeded with the domain's seed, so a
smaller limit's graphs are among a larger one's) and leaves val and test whole: a few-shot fine-tuning set scored
against the domain's full test split.

Splits, per domain: a file with a published split keeps it (GDSS: test = first 20%, no val; SPECTRE 128/32/40);
generated domains and molecular skeletons are split 80/10/10 by a permutation seeded with the domain's seed.

Conditions (:mod:`graphdiff.data.conditions`): ``y`` = the one-hot domain over *all* :data:`DOMAINS` (so a model
pre-trained without a domain has its column for fine-tuning) and the numeric statistics named by ``conditions``,
normalised by the train split's mean and std (or ``condition_stats``). ``schema.max_nodes`` is always
``max_nodes``, so pre-training and fine-tuning sets share their sizes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..checks import check_choice
from ..convert.rdkit import smiles_graph
from ..errors import DataError, MissingFileError
from . import conditions as C
from . import synthetic
from .base import GraphDataset, RawFile, fetch, load_card
from .custom import random_split
from .files import open_text
from .store import SPLITS, GraphStore

CORPUS_VERSION = 1
MAX_NODES = 200
FAMILY_MIN_NODES, FAMILY_MAX_NODES = 16, 128  # the sized families' default node range (``min/max_nodes``)


# ---- generated families --------------------------------------------------------------------------------------
def _families(num_graphs: int, seed: int, make: Callable, min_nodes: int, max_nodes: int) -> list[nx.Graph]:
    """``num_graphs`` graphs ``make(n, rng, nx_seed)`` with ``n ~ U{min_nodes..max_nodes}``; prefix-stable."""
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        g = nx.Graph(make(n, rng, synthetic._child_seed(rng)))
        g.graph.clear()
        graphs.append(nx.convert_node_labels_to_integers(g))
    return graphs


def erdos_renyi(num_graphs: int, seed: int, *, min_nodes: int = 16, max_nodes: int = 128, min_p: float = 0.05,
                max_p: float = 0.25) -> list[nx.Graph]:
    """G(n, p) graphs (Erdos & Renyi, 1959) with ``p ~ U[min_p, max_p]`` per graph."""
    return _families(num_graphs, seed, lambda n, r, s: nx.gnp_random_graph(n, r.uniform(min_p, max_p), seed=s),
                     min_nodes, max_nodes)


def barabasi_albert(num_graphs: int, seed: int, *, min_nodes: int = 16, max_nodes: int = 128, min_m: int = 1,
                    max_m: int = 4) -> list[nx.Graph]:
    """Preferential-attachment graphs (Barabasi & Albert, 1999), ``m ~ U{min_m..max_m}`` edges per new node."""
    return _families(num_graphs, seed, lambda n, r, s: nx.barabasi_albert_graph(
        n, int(r.integers(min_m, max_m + 1)), seed=s), min_nodes, max_nodes)


def watts_strogatz(num_graphs: int, seed: int, *, min_nodes: int = 16, max_nodes: int = 128,
                   ks: Sequence[int] = (2, 4, 6), min_p: float = 0.05, max_p: float = 0.3) -> list[nx.Graph]:
    """Small-world rings (Watts & Strogatz, 1998): ``k`` drawn from ``ks``, rewiring ``p ~ U[min_p, max_p]``."""
    return _families(num_graphs, seed, lambda n, r, s: nx.watts_strogatz_graph(
        n, int(r.choice(ks)), r.uniform(min_p, max_p), seed=s), min_nodes, max_nodes)


def random_geometric(num_graphs: int, seed: int, *, min_nodes: int = 16, max_nodes: int = 128,
                     min_degree: float = 3.0, max_degree: float = 8.0) -> list[nx.Graph]:
    """Random geometric graphs in the unit square (Penrose, 2003), radius ``sqrt(d / (pi n))`` for an expected
    degree ``d ~ U[min_degree, max_degree]`` (boundary effects aside)."""
    return _families(num_graphs, seed, lambda n, r, s: nx.random_geometric_graph(
        n, float(np.sqrt(r.uniform(min_degree, max_degree) / (np.pi * n))), seed=s), min_nodes, max_nodes)


def powerlaw_cluster(num_graphs: int, seed: int, *, min_nodes: int = 16, max_nodes: int = 128, min_m: int = 1,
                     max_m: int = 3, min_p: float = 0.1, max_p: float = 0.7) -> list[nx.Graph]:
    """Power-law graphs with tunable clustering (Holme & Kim, 2002): ``m ~ U{min_m..max_m}``, triangle probability
    ``p ~ U[min_p, max_p]``."""
    return _families(num_graphs, seed, lambda n, r, s: nx.powerlaw_cluster_graph(
        n, int(r.integers(min_m, max_m + 1)), r.uniform(min_p, max_p), seed=s), min_nodes, max_nodes)


# ---- the domains ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """One domain of the corpus: generated (``make(count, seed)``), a registered graph dataset, or the skeletons
    of a molecule dataset's SMILES file. ``count`` ``None`` takes every graph of a file."""

    name: str
    source: str  # "generated", "file" or "molecules"
    seed: int
    count: int | None = None
    make: Callable | None = None
    dataset: str | None = None


GENERATED = (
    Domain("erdos_renyi", "generated", 101, 400, make=erdos_renyi),
    Domain("barabasi_albert", "generated", 102, 400, make=barabasi_albert),
    Domain("watts_strogatz", "generated", 103, 400, make=watts_strogatz),
    Domain("random_geometric", "generated", 104, 400, make=random_geometric),
    Domain("powerlaw_cluster", "generated", 105, 400, make=powerlaw_cluster),
    Domain("tree", "generated", 106, 400, make=synthetic.tree),
    Domain("lobster", "generated", 107, 400, make=synthetic.lobster),
)
FROM_FILES = (
    Domain("community_small", "file", 108, dataset="community_small"),
    Domain("ego_small", "file", 109, dataset="ego_small"),
    Domain("grid", "file", 110, dataset="grid"),
    Domain("planar", "file", 111, dataset="planar"),
    Domain("sbm", "file", 112, dataset="sbm"),
    Domain("enzymes", "file", 113, dataset="enzymes"),
    Domain("qm9_skeleton", "molecules", 114, 1000, dataset="qm9"),
    Domain("zinc250k_skeleton", "molecules", 115, 1000, dataset="zinc250k"),
)
DOMAINS = GENERATED + FROM_FILES
DOMAIN_NAMES = tuple(d.name for d in DOMAINS)
# generated families whose node count is drawn from U{16..max_nodes} (option ``family_max_nodes`` widens it)
SIZED = ("erdos_renyi", "barabasi_albert", "watts_strogatz", "random_geometric", "powerlaw_cluster")


def _names(value, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    for v in items:
        check_choice(v, DOMAIN_NAMES, f"lggm: {what}", error=DataError)
    return items


def _gen_params(fn: Callable) -> dict:
    return {k: (list(p.default) if isinstance(p.default, tuple) else p.default)
            for k, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def pinned_stats(condition_stats: dict, conditions: Sequence[str]) -> dict:
    """``condition_stats`` as the corpus reads them: ``{name: {"mean", "std"}}`` (floats) for ``conditions`` only.

    Raises:
        DataError: a condition without a mean and std (one line naming it).
    """
    missing = [c for c in conditions if not (isinstance(condition_stats.get(c), dict)
                                             and {"mean", "std"} <= set(condition_stats[c]))]
    if missing:
        raise DataError(f"lggm: condition_stats has no mean and std for {missing[0]!r}")
    return {c: {"mean": float(condition_stats[c]["mean"]), "std": float(condition_stats[c]["std"])}
            for c in conditions}


class LGGMCorpus(GraphDataset):
    """The multi-domain corpus (see the module docstring); ``y`` holds the domain and numeric conditions.

    Args:
        root, split, download, force_reload: see :class:`~graphdiff.data.base.GraphDataset`.
        domains: include only these domains (default: all).
        exclude: leave these domains out (leave-one-domain-out pre-training).
        per_domain: at most this many graphs per domain (default: each domain's own count).
        conditions: numeric condition columns, any of ``n_nodes``, ``density``, ``clustering`` (default none).
        condition_stats: ``{name: {"mean", "std"}}`` to normalise with instead of this corpus's train split (a
            fine-tuning set normalised like its pre-training corpus).
        max_nodes: graphs with more nodes are dropped; also the schema's ``max_nodes``.
        family_max_nodes: draw the node counts of the sized generated families (:data:`SIZED`: Erdos-Renyi,
            Barabasi-Albert, Watts-Strogatz, random geometric, power-law cluster) from ``U{16..family_max_nodes}``
            instead of their default ``U{16..128}``, so a corpus covers larger graphs (at most ``max_nodes``).
            Recorded in ``options`` only where it changes the data: a sized domain is selected and ``m`` is not
            128 (otherwise the corpus and its cache name are the default's).
        train_limit: at most this many train graphs per domain (val and test untouched; see the module docstring).
    """

    name = "lggm"

    def __init__(self, root=None, split: str | None = None, *, download: bool = True, force_reload: bool = False,
                 domains: Sequence[str] | str | None = None, exclude: Sequence[str] | str | None = None,
                 per_domain: int | None = None, conditions: Sequence[str] | str = (),
                 condition_stats: dict | None = None, max_nodes: int = MAX_NODES, train_limit: int | None = None,
                 family_max_nodes: int | None = None):
        include = _names(domains, "domains") or list(DOMAIN_NAMES)
        drop = set(_names(exclude, "exclude"))
        self.selected = [d for d in DOMAIN_NAMES if d in include and d not in drop]
        if not self.selected:
            raise DataError(f"lggm: no domain left (domains={domains!r}, exclude={exclude!r})")
        conditions = [conditions] if isinstance(conditions, str) else list(conditions)
        for c in conditions:
            check_choice(c, C.STATISTICS, "lggm: condition column", error=DataError)
        def integer(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if per_domain is not None and not (integer(per_domain) and per_domain >= 1):
            raise DataError(f"lggm: per_domain must be a positive integer, got {per_domain!r}")
        if train_limit is not None and not (integer(train_limit) and train_limit >= 1):
            raise DataError(f"lggm: train_limit must be a positive integer, got {train_limit!r}")
        if not (integer(max_nodes) and max_nodes >= 2):
            raise DataError(f"lggm: max_nodes must be an integer >= 2, got {max_nodes!r}")
        if family_max_nodes is not None and not (integer(family_max_nodes)
                                                 and FAMILY_MIN_NODES <= family_max_nodes <= max_nodes):
            raise DataError(f"lggm: family_max_nodes must be an integer from {FAMILY_MIN_NODES} to max_nodes "
                            f"({max_nodes}), got {family_max_nodes!r}")
        if condition_stats is not None:
            condition_stats = pinned_stats(condition_stats, conditions)
        self.options = {"domains": self.selected, "per_domain": None if per_domain is None else int(per_domain),
                        "conditions": conditions, "condition_stats": condition_stats, "max_nodes": int(max_nodes)}
        if train_limit is not None:  # only when set: the caches of the other variants keep their names
            self.options["train_limit"] = int(train_limit)
        if family_max_nodes not in (None, FAMILY_MAX_NODES) and set(self.selected) & set(SIZED):
            self.options["family_max_nodes"] = int(family_max_nodes)
        super().__init__(root, split, download=download, force_reload=force_reload)

    # ---- cache ----------------------------------------------------------------------------------------------
    def _present(self) -> list[str]:
        """File domains whose raw file (or processed cache) is in place; a change rebuilds the corpus."""
        out = []
        for d in FROM_FILES:
            base = self.root / d.dataset
            files = [f for f in load_card(d.dataset)["files"] if f.get("role", "smiles") == "smiles"]
            if any((base / "raw" / f["name"]).is_file() for f in files) or \
                    (d.source == "file" and (base / "processed" / "default" / "meta.json").is_file()):
                out.append(d.name)
        return out

    def variant(self) -> str:
        if self.options == {"domains": list(DOMAIN_NAMES), "per_domain": None, "conditions": [],
                            "condition_stats": None, "max_nodes": MAX_NODES}:
            return "default"
        return "opts-" + hashlib.sha1(json.dumps(self.options, sort_keys=True).encode()).hexdigest()[:12]

    def cache_key(self) -> dict:
        return {"name": self.name, "variant": self.variant(), "options": self.options, "version": CORPUS_VERSION,
                "present": self._present(), "networkx": nx.__version__}

    # ---- reading the domains --------------------------------------------------------------------------------
    def _file_graphs(self, d: Domain):
        from . import dataset_class
        from .graphs import GDSSGraphs

        ds = dataset_class(d.dataset)(root=self.root, download=self.download)
        graphs = [ds.store.graph(i) for i in range(len(ds.store))]
        rule = ("published GDSS split: test = the first 20% of the file, train = the rest, no val"
                if isinstance(ds, GDSSGraphs) else "published SPECTRE split 128/32/40 (torch seed 1234)")
        return ([len(g[0]) for g in graphs], [g[1] for g in graphs], np.asarray(ds.store.split, np.int8),
                {"files": [f["name"] for f in load_card(d.dataset)["files"]], "split_rule": rule})

    def _molecule_graphs(self, d: Domain, k: int):
        card = load_card(d.dataset)
        choices = [RawFile.from_card(f) for f in card["files"] if f.get("role") == "smiles"]
        path = fetch(self.root / d.dataset / "raw", choices, download=self.download)
        with open_text(path, "SMILES text") as fh:
            lines = fh.read().splitlines()
        header = 1 if lines and lines[0].strip().lower() == "smiles" else 0
        rows = np.sort(np.random.default_rng(d.seed).permutation(len(lines) - header)[:k])
        sizes, edges, bad = [], [], 0
        for r in rows:
            try:
                z, _, u, v, _ = smiles_graph(lines[header + int(r)].split(",")[0].split()[0], False, False)
            except Exception:  # an unparsable row is skipped and counted, as the molecule loaders do
                bad += 1
                continue
            sizes.append(len(z))
            edges.append(np.stack([np.asarray(u, np.int64), np.asarray(v, np.int64)], 1).reshape(-1, 2))
        split = random_split(len(sizes), (0.8, 0.1, 0.1), d.seed)
        return sizes, edges, split, {"file": path.name, "rows_sampled": len(rows), "invalid": bad,
                                     "split_rule": f"seeded permutation (seed {d.seed}), 80/10/10"}

    def _domain(self, d: Domain, cap: int | None):
        """``(sizes, edge lists, split codes, info)`` of one domain, capped to ``max_nodes`` and ``cap``."""
        if d.source == "generated":
            k = d.count if cap is None else min(cap, d.count)
            params = _gen_params(d.make)
            if d.name in SIZED and "family_max_nodes" in self.options:
                params["max_nodes"] = self.options["family_max_nodes"]
                graphs = d.make(k, d.seed, max_nodes=params["max_nodes"])
            else:
                graphs = d.make(k, d.seed)
            sizes = [g.number_of_nodes() for g in graphs]
            edges = [synthetic.edge_array(g) for g in graphs]
            split = random_split(len(graphs), (0.8, 0.1, 0.1), d.seed)
            meta = {"generator": f"{d.make.__module__}.{d.make.__name__}", "params": params,
                    "split_rule": f"seeded permutation (seed {d.seed}), 80/10/10"}
        elif d.source == "molecules":
            sizes, edges, split, meta = self._molecule_graphs(d, min(cap or d.count, d.count))
        else:
            sizes, edges, split, meta = self._file_graphs(d)
        keep = np.flatnonzero(np.asarray(sizes) <= self.options["max_nodes"])
        meta["dropped_over_max_nodes"] = len(sizes) - len(keep)
        if cap is not None and len(keep) > cap and d.source == "file":
            keep = np.sort(np.random.default_rng(d.seed).permutation(keep)[:cap])
        limit = self.options.get("train_limit")
        if limit is not None:
            train = keep[np.asarray(split)[keep] == SPLITS["train"]]
            chosen = np.random.default_rng(d.seed).permutation(train)[:limit]
            keep = keep[~np.isin(keep, train) | np.isin(keep, chosen)]
            meta["train_limit"] = {"kept": min(limit, len(train)), "of": len(train)}
        return [sizes[i] for i in keep], [edges[i] for i in keep], np.asarray(split)[keep], meta

    def process(self):
        cap = self.options["per_domain"]
        sizes, edges, split, dom, info_domains, skipped = [], [], [], [], {}, {}
        for d in DOMAINS:
            if d.name not in self.selected:
                continue
            try:
                s, e, sp, meta = self._domain(d, cap)
            except MissingFileError as exc:
                skipped[d.name] = str(exc)
                print(f"lggm: domain {d.name} skipped: {exc}", file=sys.stderr)
                continue
            sizes += s
            edges += e
            split.append(sp)
            dom += [DOMAIN_NAMES.index(d.name)] * len(s)
            n = np.asarray(s)
            info_domains[d.name] = {
                "source": d.source, "seed": d.seed, "graphs": len(s),
                **{k: int((sp == v).sum()) for k, v in SPLITS.items()},
                "nodes": {"min": int(n.min()), "max": int(n.max()), "mean": round(float(n.mean()), 3)} if len(n)
                else {}, **meta}
        if not sizes:
            raise DataError(f"lggm: no graphs (every selected domain was skipped: {', '.join(skipped)})")
        split = np.concatenate(split)
        store = GraphStore.from_lists([np.zeros(n, np.int64) for n in sizes], edges, split=split)
        names = self.options["conditions"]
        raw = np.array([C.graph_statistics(n, e, names) for n, e in zip(sizes, edges)]).reshape(len(sizes), -1)
        stats = self.options["condition_stats"] or C.numeric_stats(raw[split == 0], names)
        spec = {"categorical": {"domain": list(DOMAIN_NAMES)}, "numeric": {c: stats[c] for c in names}}
        store.y = C.encode(spec, {"domain": np.asarray(dom)}, raw)
        schema = store.schema(("node",), ("none", "edge"), graph_features=C.condition_columns(spec),
                              extra={"conditions": spec})
        schema = schema.with_max_nodes(self.options["max_nodes"])
        info = synthetic.graph_counts(store)
        info.update({"domains": info_domains, "skipped": skipped, "excluded": [d for d in DOMAIN_NAMES
                                                                             if d not in self.selected],
                     "options": self.options, "invalid": {"count": 0, "examples": []}, "networkx": nx.__version__,
                     "split_rule": "per domain (see info['domains'][name]['split_rule'])"})
        return store, schema, info

    # ---- domains of the graphs ------------------------------------------------------------------------------
    @property
    def domains(self) -> list[str]:
        """The domains this corpus holds graphs of, in :data:`DOMAINS` order."""
        return [d for d in DOMAIN_NAMES if d in self.info["domains"]]

    def domain_ids(self) -> np.ndarray:
        """Each graph's domain as an index into :data:`DOMAIN_NAMES` (this split)."""
        y = np.asarray(self.store.y)[self._idx, : len(DOMAIN_NAMES)]
        return y.argmax(1)

    def domain_of(self, i: int) -> str:
        return DOMAIN_NAMES[int(np.asarray(self.store.y)[self._idx[i], : len(DOMAIN_NAMES)].argmax())]

    def domain_counts(self) -> dict[str, int]:
        """``{domain: graphs}`` in this split."""
        counts = np.bincount(self.domain_ids(), minlength=len(DOMAIN_NAMES))
        return {d: int(counts[DOMAIN_NAMES.index(d)]) for d in self.domains}

    def summary_lines(self) -> list[str]:
        """Per-domain counts and node ranges (``graphdiff datasets info``)."""
        out = [f"{'domain':18} {'source':9} {'seed':>4} {'graphs':>6} {'train':>5} {'val':>4} {'test':>4}  nodes"]
        for name, d in self.info["domains"].items():
            nodes = d["nodes"]
            rng = f"{nodes['min']}-{nodes['max']} (mean {nodes['mean']})" if nodes else "-"
            drop = f", {d['dropped_over_max_nodes']} over max_nodes dropped" if d["dropped_over_max_nodes"] else ""
            out.append(f"{name:18} {d['source']:9} {d['seed']:>4} {d['graphs']:>6} {d['train']:>5} {d['val']:>4} "
                       f"{d['test']:>4}  {rng}{drop}")
        for name, why in self.info["skipped"].items():
            out.append(f"{name:18} skipped: {why}")
        out.append("conditions: " + ", ".join(self.schema.graph_features[len(DOMAIN_NAMES):] or ["domain only"]))
        return out


__all__ = ["LGGMCorpus", "DOMAINS", "DOMAIN_NAMES", "Domain", "erdos_renyi", "barabasi_albert", "watts_strogatz",
           "random_geometric", "powerlaw_cluster"]
