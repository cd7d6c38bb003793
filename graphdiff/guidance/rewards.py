"""Rewards: named, batched scores of generated molecules or graphs that guides steer toward.

A :class:`Reward` maps a list of samples to a float64 array of the same length. Molecule rewards take RDKit
molecules (``Chem.Mol``), SMILES strings or ``None``; graph rewards take ``networkx.Graph`` objects or ``None``.

Invalid samples never raise. ``None``, an empty molecule, an unparsable SMILES string or a molecule that does not
sanitize (the strict validity of :func:`graphdiff.convert.validity.is_valid_strict`) gets the reward's
``invalid_value``; so does a valid molecule that a built-in RDKit reward cannot score. ``invalid_value`` is
user-settable; its default is the worst end of the reward's range (the minimum when higher is better, the maximum
when lower is better, e.g. 0 for QED and 10 for the SA score), ``-inf`` for unbounded rewards (``logp``, user
rewards; ``+inf`` for a user reward with ``higher_is_better=False``).

Built-in rewards (``get_reward(NAME, **kwargs)``; range, direction, default ``invalid_value``):

========================  ==========================================================  =============  =======
name                      value                                                       higher better  invalid
========================  ==========================================================  =============  =======
``qed``                   RDKit QED, [0, 1]                                           yes            0
``sa``                    SA score (:mod:`graphdiff.metrics.sascore`), [1, 10]        no             10
``sa_norm``               ``(10 - SA) / 9``, [0, 1] (the SVDD paper's normalisation)  yes            0
``logp``                  Crippen logP, unbounded                                     yes            -inf
``mw``                    molecular weight (``Descriptors.MolWt``), >= 0              yes            0
``rings``                 ring count (SSSR), >= 0                                     yes            0
``similarity``            Tanimoto to ``target`` (SMILES), Morgan r=2, 2048 bits      yes            0
``smarts``                number of matches of ``pattern`` (SMARTS), >= 0             yes            0
``n_nodes``               number of nodes, >= 0                                       yes            0
``density``               edge density, [0, 1]                                        yes            0
``clustering``            average clustering coefficient, [0, 1]                      yes            0
``degree_hist``           minus the total-variation distance (half the L1 distance)   yes            -1
                          between the normalised degree histogram and ``target``
                          (counts or frequencies indexed by degree), [-1, 0]
========================  ==========================================================  =============  =======

A user reward is a ``module:function`` string (imported) or a Python callable, with ``kind`` (``"molecule"``, the
default, or ``"graph"``) and ``batched``: ``False`` (the default) for a function of one sample that returns a number,
``True`` for a function of a list of samples that returns one number per sample. It is called on valid samples
only (molecules sanitized); a result of the wrong length, a non-number, NaN, or an exception raises a one-line
:class:`RewardError` that names the reward and the sample index and value.

Arguments on the command line: ``--reward NAME|module:function`` plus repeatable ``--reward-arg key=value``;
:func:`parse_reward_args` turns the ``key=value`` strings into keyword arguments for :func:`get_reward` (values are
Python literals where they parse as one, e.g. ``invalid_value=-1`` or ``target=[0,2,1]``, else strings, e.g.
``target=C=O``).
"""

from __future__ import annotations

import ast
import copy
import importlib
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterable, Sequence

import networkx as nx
import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors

from ..checks import check_keys, suggest
from ..errors import ConfigError, GraphdiffError

RDLogger.DisableLog("rdApp.*")  # sanitizing invalid samples is expected; as in graphdiff.convert.rdkit

KINDS = ("molecule", "graph")


class RewardError(GraphdiffError, ValueError):
    """A reward that cannot score a valid sample: wrong output shape, a non-number, NaN, or an exception."""


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(sample) -> str:
    """Short one-line description of a sample for error messages: SMILES for molecules, sizes for graphs."""
    if isinstance(sample, Chem.Mol):
        try:
            return f"molecule {Chem.MolToSmiles(sample)!r}"
        except Exception:
            return f"molecule with {sample.GetNumAtoms()} atoms"
    if isinstance(sample, nx.Graph):
        return f"graph with {sample.number_of_nodes()} nodes and {sample.number_of_edges()} edges"
    return _one_line(repr(sample), 80)


def _sanitized_molecule(sample) -> Chem.Mol | None:
    """A sanitized copy of ``sample`` (Mol or SMILES), or ``None`` when it is invalid."""
    from ..convert.validity import _sanitized

    return _sanitized(Chem.MolFromSmiles(sample, sanitize=False) if isinstance(sample, str) else sample)


def _as_number(value) -> float | None:
    """``value`` as a float when it is one real number (Python, numpy scalar or size-1 array), else ``None``."""
    if isinstance(value, np.ndarray):
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            return None
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    return float(value)


class Reward:
    """A named, batched reward: ``reward(samples) -> np.ndarray`` (float64, one value per sample).

    Args:
        name: Name used in reports and error messages.
        fn: The score. With ``batched=False`` a function of one valid sample returning a number; with
            ``batched=True`` a function of a list of valid samples returning one number per sample.
        kind: ``"molecule"`` (samples are ``Chem.Mol``, SMILES or ``None``) or ``"graph"`` (``networkx.Graph`` or
            ``None``).
        batched: See ``fn``.
        higher_is_better: Direction of the reward.
        invalid_value: Reward of an invalid sample; ``None`` picks the worst end of ``bounds``.
        bounds: ``(low, high)`` range of the reward, used for the default ``invalid_value``.
        unscorable_is_invalid: When true (built-in rewards), a valid sample that ``fn`` cannot score (it raises or
            returns NaN or a non-number) gets ``invalid_value``; when false (user rewards) it raises
            :class:`RewardError`. A batched ``fn`` that raises, or returns the wrong number of values, always raises.
        connected: When true, a molecule of more than one fragment (or a disconnected graph) counts as invalid, so
            a search cannot raise the reward by adding detached fragments (QED does not penalise them).

    Attributes:
        n_scored: Number of samples scored so far (valid or not), for cost accounting; :meth:`reset_count` zeroes it.
    """

    def __init__(self, name: str, fn: Callable, *, kind: str = "molecule", batched: bool = False,
                 higher_is_better: bool = True, invalid_value: float | None = None,
                 bounds: tuple[float, float] = (-math.inf, math.inf), unscorable_is_invalid: bool = False,
                 connected: bool = False):
        if kind not in KINDS:
            raise ConfigError(f"reward {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}"
                              f"{suggest(kind, KINDS)}")
        if not callable(fn):
            raise ConfigError(f"reward {name!r}: {fn!r} is not callable")
        self.name = str(name)
        self.fn = fn
        self.kind = kind
        self.batched = bool(batched)
        self.higher_is_better = bool(higher_is_better)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        if invalid_value is None:
            invalid_value = self.bounds[0] if self.higher_is_better else self.bounds[1]
        number = _as_number(invalid_value)
        if number is None or math.isnan(number):
            raise ConfigError(f"reward {self.name!r}: invalid_value must be a number, got {invalid_value!r}")
        self.invalid_value = number
        self.unscorable_is_invalid = bool(unscorable_is_invalid)
        self.connected = bool(connected)
        self.n_scored = 0

    def __repr__(self) -> str:
        return (f"Reward({self.name!r}, kind={self.kind!r}, higher_is_better={self.higher_is_better}, "
                f"invalid_value={self.invalid_value})")

    def reset_count(self) -> None:
        """Set :attr:`n_scored` back to zero."""
        self.n_scored = 0

    def prepare(self, sample):
        """The sample as ``fn`` receives it (a sanitized molecule or the graph), or ``None`` when invalid."""
        if self.kind == "molecule":
            if sample is None or isinstance(sample, (str, Chem.Mol)):
                mol = _sanitized_molecule(sample)
                if mol is not None and self.connected and len(Chem.GetMolFrags(mol)) > 1:
                    return None
                return mol
            raise RewardError(f"reward {self.name!r}: expected an RDKit molecule, a SMILES string or None, "
                              f"got {type(sample).__name__}")
        if sample is None:
            return None
        if isinstance(sample, nx.Graph):
            if self.connected and (sample.number_of_nodes() == 0 or not nx.is_connected(sample)):
                return None
            return sample
        raise RewardError(f"reward {self.name!r}: expected a networkx graph or None, got {type(sample).__name__}")

    def __call__(self, samples: Iterable) -> np.ndarray:
        """Rewards of ``samples`` (a list, tuple, array or iterator of samples) as a float64 array, one per sample."""
        if isinstance(samples, (str, bytes, Chem.Mol, nx.Graph)) or not isinstance(samples, Iterable):
            raise RewardError(f"reward {self.name!r}: expected a list of samples, got {type(samples).__name__}")
        samples = list(samples)
        out = np.full(len(samples), self.invalid_value, dtype=np.float64)
        prepared = [self.prepare(s) for s in samples]
        valid = [i for i, p in enumerate(prepared) if p is not None]
        self.n_scored += len(samples)
        if not valid:
            return out
        if self.batched:
            values = self._call_batched([prepared[i] for i in valid], valid)
        else:
            values = [self._call_one(prepared[i], i) for i in valid]
        for i, v in zip(valid, values):
            if v is not None:
                out[i] = v
        return out

    def score(self, sample) -> float:
        """Reward of one sample."""
        return float(self([sample])[0])

    def _unscorable(self, message: str, cause: Exception | None = None):
        if self.unscorable_is_invalid:
            return None
        raise RewardError(_one_line(f"reward {self.name!r}: {message}", 400)) from cause

    def _check(self, value, index: int, sample):
        number = _as_number(value)
        if number is None:
            return self._unscorable(f"returned {_one_line(repr(value), 60)} (not a number) for sample {index} "
                                    f"({_describe(sample)})")
        if not math.isfinite(number):
            shown = "NaN" if math.isnan(number) else str(number)
            return self._unscorable(f"returned {shown} for sample {index} ({_describe(sample)}); a reward is a "
                                    f"finite number")
        return number

    def _call_one(self, sample, index: int):
        try:
            value = self.fn(sample)
        except Exception as exc:
            return self._unscorable(f"raised {type(exc).__name__}: {exc} on sample {index} ({_describe(sample)})",
                                    exc)
        return self._check(value, index, sample)

    def _call_batched(self, batch: list, indices: list[int]) -> list:
        try:
            values = self.fn(batch)
        except Exception as exc:
            raise RewardError(_one_line(f"reward {self.name!r}: raised {type(exc).__name__}: {exc} on a batch of "
                                        f"{len(batch)} samples (first: sample {indices[0]}, "
                                        f"{_describe(batch[0])})", 400)) from exc
        try:
            values = list(np.asarray(values, dtype=object).reshape(-1)) if not isinstance(values, list) else values
        except Exception:
            values = None
        if values is None or len(values) != len(batch):
            got = "a non-sequence" if values is None else f"{len(values)} values"
            raise RewardError(f"reward {self.name!r}: returned {got} for a batch of {len(batch)} samples "
                              f"(a batched reward returns one number per sample)")
        return [self._check(v, i, s) for v, i, s in zip(values, indices, batch)]


class _Negated(Reward):
    """A reward a maximising search can use for a lower-is-better one: the same samples, values negated."""

    def __call__(self, samples: Iterable) -> np.ndarray:
        return -super().__call__(samples)


def maximised(reward: Reward) -> Reward:
    """``reward`` as a higher-is-better reward: itself, or a copy whose values are negated (``sa``, ``logp``
    toward lower, a user reward with ``higher_is_better=False``), so searches that keep the largest values move
    toward the better end."""
    if reward.higher_is_better:
        return reward
    flipped = copy.copy(reward)
    flipped.__class__ = _Negated
    flipped.higher_is_better = True
    flipped.name = f"-{reward.name}"
    flipped.n_scored = 0
    return flipped


# --- built-in molecule rewards -----------------------------------------------------------------------------------
def _sa(mol: Chem.Mol) -> float:
    from ..metrics.sascore import sa_score

    return sa_score(mol)


def _sa_norm(mol: Chem.Mol) -> float:
    return (10.0 - _sa(mol)) / 9.0


SIMILARITY_RADIUS = 2
SIMILARITY_BITS = 2048


def _fingerprint_generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=SIMILARITY_RADIUS, fpSize=SIMILARITY_BITS)


def _similarity(target: str | None = None, **options) -> Reward:
    check_keys(options, ["invalid_value", "target"], "reward 'similarity'")
    if target is None or not isinstance(target, str):
        raise ConfigError(f"reward 'similarity': needs target=SMILES, got {target!r}")
    ref = _sanitized_molecule(target)
    if ref is None:
        raise ConfigError(f"reward 'similarity': target {target!r} is not a valid SMILES")
    gen = _fingerprint_generator()
    ref_fp = gen.GetFingerprint(ref)

    def tanimoto(mol: Chem.Mol) -> float:
        return DataStructs.TanimotoSimilarity(ref_fp, gen.GetFingerprint(mol))

    return _builtin("similarity", tanimoto, bounds=(0.0, 1.0), params=("target",), **options)


def _smarts(pattern: str | None = None, **options) -> Reward:
    check_keys(options, ["invalid_value", "pattern"], "reward 'smarts'")
    query = Chem.MolFromSmarts(pattern) if isinstance(pattern, str) and pattern else None
    if query is None:
        raise ConfigError(f"reward 'smarts': needs pattern=SMARTS (a valid SMARTS string), got {pattern!r}")

    def count(mol: Chem.Mol) -> float:
        return float(len(mol.GetSubstructMatches(query, uniquify=True, maxMatches=100000)))

    return _builtin("smarts", count, bounds=(0.0, math.inf), params=("pattern",), **options)


# --- built-in graph rewards --------------------------------------------------------------------------------------

def _degree_distribution(hist) -> np.ndarray:
    h = np.asarray(hist, dtype=np.float64).reshape(-1)
    return h / h.sum()


def _degree_hist(target=None, **options) -> Reward:
    check_keys(options, ["invalid_value", "target"], "reward 'degree_hist'")
    try:
        ref = np.asarray(target, dtype=np.float64).reshape(-1) if target is not None else np.zeros(0)
    except (TypeError, ValueError):
        ref = np.full(1, np.nan)
    if ref.size == 0 or not np.all(np.isfinite(ref)) or np.any(ref < 0) or ref.sum() <= 0:
        raise ConfigError(f"reward 'degree_hist': needs target=[c0, c1, ...] (non-negative counts or frequencies "
                          f"of degrees 0, 1, ..., not all zero), got {target!r}")
    ref = ref / ref.sum()

    def tv_distance(g: nx.Graph) -> float:
        if g.number_of_nodes() == 0:
            return -1.0
        hist = _degree_distribution(nx.degree_histogram(g))
        n = max(hist.size, ref.size)
        a = np.pad(hist, (0, n - hist.size))
        b = np.pad(ref, (0, n - ref.size))
        return -0.5 * float(np.abs(a - b).sum())

    return _builtin("degree_hist", tv_distance, kind="graph", bounds=(-1.0, 0.0), params=("target",), **options)


def _builtin(name: str, fn: Callable, *, kind: str = "molecule", bounds=(0.0, math.inf), higher_is_better=True,
             params: tuple[str, ...] = (), **options) -> Reward:
    check_keys(options, ["invalid_value", *params], f"reward {name!r}")
    return Reward(name, fn, kind=kind, higher_is_better=higher_is_better, bounds=bounds,
                  unscorable_is_invalid=True, **options)


def _simple(name: str, fn: Callable, **defaults) -> Callable[..., Reward]:
    def factory(**options) -> Reward:
        return _builtin(name, fn, **defaults, **options)

    return factory


REWARDS: dict[str, Callable[..., Reward]] = {
    "qed": _simple("qed", QED.qed, bounds=(0.0, 1.0)),
    "sa": _simple("sa", _sa, bounds=(1.0, 10.0), higher_is_better=False),
    "sa_norm": _simple("sa_norm", _sa_norm, bounds=(0.0, 1.0)),
    "logp": _simple("logp", Crippen.MolLogP, bounds=(-math.inf, math.inf)),
    "mw": _simple("mw", Descriptors.MolWt),
    "rings": _simple("rings", rdMolDescriptors.CalcNumRings),
    "similarity": _similarity,
    "smarts": _smarts,
    "n_nodes": _simple("n_nodes", lambda g: g.number_of_nodes(), kind="graph"),
    "density": _simple("density", nx.density, kind="graph", bounds=(0.0, 1.0)),
    "clustering": _simple("clustering", nx.average_clustering, kind="graph", bounds=(0.0, 1.0)),
    "degree_hist": _degree_hist,
}

USER_OPTIONS = ("kind", "batched", "name", "higher_is_better", "invalid_value")


def _load_function(spec: str) -> Callable:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"reward {spec!r}: expected NAME or module:function")
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0] or os.getcwd() in sys.path:
                raise
            # a module of the current folder, as `python -m` would find it (the graphdiff script does not)
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(_one_line(f"reward {spec!r}: cannot import module {module_name!r}: "
                                    f"{type(exc).__name__}: {exc}", 400)) from exc
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            public = [n for n in dir(fn) if not n.startswith("_")]
            raise ConfigError(f"reward {spec!r}: {module_name!r} has no attribute {attr!r}{suggest(part, public)}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ConfigError(f"reward {spec!r}: {attr!r} is not callable")
    return fn


def get_reward(spec: str | Callable | Reward, **kwargs) -> Reward:
    """A :class:`Reward` from a built-in name, a ``module:function`` string, a callable or a ``Reward``.

    Args:
        spec: A name in :data:`REWARDS` (``qed``, ``similarity``, ...), ``"module:function"`` (imported) or a
            callable. A :class:`Reward` is returned as is (no keyword arguments allowed).
        **kwargs: For built-ins, their arguments (``target`` for ``similarity`` and ``degree_hist``, ``pattern`` for
            ``smarts``) and ``invalid_value``. For user rewards: ``kind`` (``"molecule"``/``"graph"``),
            ``batched`` (default ``False``: ``fn(sample) -> number``), ``name``, ``higher_is_better``,
            ``invalid_value``. For every reward ``connected=True``: a molecule of several fragments (a disconnected
            graph) scores ``invalid_value``.

    Raises:
        ConfigError: An unknown name (with the closest one), a module or function that cannot be loaded, an
            unknown or bad argument.
    """
    connected = kwargs.pop("connected", False)
    if not isinstance(connected, bool):
        raise ConfigError(f"reward {spec!r}: connected must be true or false, got {connected!r}")
    reward = _get_reward(spec, **kwargs)
    if connected:
        reward = copy.copy(reward)  # a Reward passed in stays as it was
        reward.connected = True
        reward.name += "+connected"
    return reward


def _get_reward(spec, **kwargs) -> Reward:
    if isinstance(spec, Reward):
        if kwargs:
            raise ConfigError(f"reward {spec.name!r}: a Reward object takes no arguments, got {', '.join(kwargs)}")
        return spec
    if callable(spec):
        check_keys(kwargs, USER_OPTIONS, f"reward {getattr(spec, '__name__', repr(spec))!r}")
        name = kwargs.pop("name", None) or getattr(spec, "__name__", None) or repr(spec)
        return Reward(name, spec, **kwargs)
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"reward: expected a name, module:function or a callable, got {spec!r}")
    if spec in REWARDS:
        try:
            return REWARDS[spec](**kwargs)
        except TypeError as exc:  # a built-in called with a positional or duplicate argument
            raise ConfigError(f"reward {spec!r}: {exc}") from exc
    if ":" not in spec:
        raise ConfigError(f"reward: unknown {spec!r}{suggest(spec, REWARDS)}; choose from "
                          f"{', '.join(sorted(REWARDS))} or give module:function")
    check_keys(kwargs, USER_OPTIONS, f"reward {spec!r}")
    name = kwargs.pop("name", None) or spec
    return Reward(name, _load_function(spec), **kwargs)


def parse_reward_args(items: Sequence[str]) -> dict:
    """Keyword arguments for :func:`get_reward` from ``key=value`` strings (the CLI's ``--reward-arg``).

    Each item splits at its first ``=``; the value is a Python literal where it parses as one (numbers, booleans,
    lists; ``true`` / ``false`` in any case are booleans too), else the string itself (a SMILES such as ``C=O`` or
    a SMARTS pattern stays a string).

    Raises:
        ConfigError: An item without ``=``, an empty key or a key given twice.
    """
    out: dict = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"reward argument {item!r}: expected key=value")
        if key in out:
            raise ConfigError(f"reward argument {item!r}: {key!r} given twice")
        if text.strip().lower() in ("true", "false"):  # the shell's spelling of a flag as well as Python's
            out[key] = text.strip().lower() == "true"
            continue
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = text
        out[key] = value
    return out
