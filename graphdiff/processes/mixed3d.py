"""The shared part of the 3D molecule processes: coordinates plus atom-type, charge and bond categories.

A 3D molecule (explicit hydrogens) is a :class:`~graphdiff.state.GraphState` with ``pos``. Its node categories are
atom tokens with the formal charge folded in (``"N+"``); the 3D processes split each token into an **element** and
a **formal charge** and model them as two categorical variables, as EQGAT-diff (Le et al., ICLR 2024) and MiDi
(Vignac et al., ECML 2023) do. The process state is

- ``x = [element one-hot (Ka) | charge one-hot (Kc)]``, ``[B, N, Ka + Kc]``,
- ``e``: bond one-hot ``[B, N, N, Ke]`` (symmetric, "none" on the diagonal and padding),
- ``pos``: ``[B, N, 3]`` with zero centre of mass over the real atoms (the translation-free subspace in which an
  E(3)-invariant density can be normalised, Hoogeboom et al. 2022), zeros at padded slots.

The denoiser maps ``(state_t, t, cond)`` to a :class:`GraphState` of element | charge logits, bond logits and the
predicted **clean** coordinates (data parameterisation). This module holds what the diffusion
(:mod:`graphdiff.processes.eqgat_diff`) and the flow (:mod:`graphdiff.processes.semlaflow`) share: the vocabularies,
encode / decode, the prior, centring, guided predictions and the per-term losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, SchemaError
from ..schema import Schema, atom_token, parse_atom_token
from ..state import GraphState, pair_mask
from .categorical import (check_condition, condition_input, draw_uniforms, drop_conditions, guided_log_probs,
                          mask_from_counts, sample_categorical, sample_edges, symmetric_indices, upper_pair_mask)

LIMITS = ("marginal", "uniform")


def centre(pos: Tensor, mask: Tensor) -> Tensor:
    """Subtract each molecule's centre of mass (unit masses) over its real atoms; padded slots become 0.

    Shapes:
        pos: ``[B, N, 3]``; mask: ``[B, N]``; returns ``[B, N, 3]``.
    """
    w = mask.unsqueeze(-1).to(pos.dtype)
    c = (pos * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1)
    return (pos - c) * w


def element_charge_vocab(schema: Schema) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The sorted elements and formal charges of a molecule schema's atom tokens (charge 0 always included)."""
    if schema.kind != "molecule":
        raise SchemaError(f"a 3D molecule process needs a molecule schema, got kind {schema.kind!r}")
    parsed = [parse_atom_token(t) for t in schema.node_categories]
    elements = tuple(dict.fromkeys(s for s, _ in parsed))
    charges = tuple(sorted({c for _, c in parsed} | {0}))
    return elements, charges


class Mixed3DProcess:
    """Base of the 3D molecule processes (see the module docstring for the state).

    Args:
        schema: a molecule schema (atom tokens, bonds, node-count histogram, marginals).
        limit: the categorical prior: ``"marginal"`` (the data marginals of elements, charges and bonds) or
            ``"uniform"``.
        lambda_pos, lambda_atoms, lambda_charges, lambda_bonds: weights of the four loss terms (defaults: the
            EQGAT-diff command-line defaults 3.0 / 0.4 / 1.0 / 2.0, ``experiments/hparams.py`` of
            github.com/tuanle618/eqgat-diff).
        cond_drop: probability of dropping a molecule's condition in training (classifier-free guidance).
    """

    name = "mixed3d"

    def __init__(self, schema: Schema, *, limit: str = "marginal", lambda_pos: float = 3.0,
                 lambda_atoms: float = 0.4, lambda_charges: float = 1.0, lambda_bonds: float = 2.0,
                 cond_drop: float = 0.1):
        if not isinstance(schema, Schema):
            raise ConfigError(f"process: schema must be a Schema, got {type(schema).__name__}")
        if limit not in LIMITS:
            raise ConfigError(f"process.limit: {limit!r} is not one of {LIMITS}")
        for key, v in (("lambda_pos", lambda_pos), ("lambda_atoms", lambda_atoms),
                       ("lambda_charges", lambda_charges), ("lambda_bonds", lambda_bonds)):
            if not float(v) >= 0:
                raise ConfigError(f"process.{key} must be >= 0, got {v}")
        if not 0.0 <= float(cond_drop) < 1.0:
            raise ConfigError(f"process.cond_drop must be in [0, 1), got {cond_drop}")
        self.schema = schema
        self.elements, self.charges = element_charge_vocab(schema)
        self.limit = limit
        self.lambdas = (float(lambda_pos), float(lambda_atoms), float(lambda_charges), float(lambda_bonds))
        self.cond_drop = float(cond_drop)
        tok = [parse_atom_token(t) for t in schema.node_categories]
        self._tok_elem = torch.tensor([self.elements.index(s) for s, _ in tok], dtype=torch.long)
        self._tok_charge = torch.tensor([self.charges.index(c) for _, c in tok], dtype=torch.long)
        self.m_a, self.m_c, self.m_e = self._limits()

    def _limits(self) -> tuple[Tensor, Tensor, Tensor]:
        ka, kc, ke = self.ka, self.kc, self.ke
        if self.limit == "uniform":
            return (torch.full((ka,), 1.0 / ka, dtype=torch.float64), torch.full((kc,), 1.0 / kc, dtype=torch.float64),
                    torch.full((ke,), 1.0 / ke, dtype=torch.float64))
        nm = torch.tensor(self.schema.node_marginals, dtype=torch.float64)
        em = torch.tensor(self.schema.edge_marginals, dtype=torch.float64)
        if nm.numel() != self.schema.num_node_types or em.numel() != ke or nm.sum() <= 0 or em.sum() <= 0:
            raise SchemaError("process.limit: 'marginal' needs the schema's node and edge marginals (a schema built "
                              "from data); use limit: uniform otherwise")
        m_a = torch.zeros(ka, dtype=torch.float64).index_add_(0, self._tok_elem, nm)
        m_c = torch.zeros(kc, dtype=torch.float64).index_add_(0, self._tok_charge, nm)
        return m_a / m_a.sum(), m_c / m_c.sum(), em / em.sum()

    # ---- sizes ----------------------------------------------------------------------------------------
    @property
    def ka(self) -> int:
        return len(self.elements)

    @property
    def kc(self) -> int:
        return len(self.charges)

    @property
    def ke(self) -> int:
        return self.schema.num_edge_types

    @property
    def fy(self) -> int:
        return len(self.schema.graph_features)

    def denoiser_kwargs(self) -> dict:
        """Sizes the denoiser is built with (added to the preset's model section)."""
        return {"node_dim": self.ka + self.kc, "edge_dim": self.ke, "node_out": self.ka + self.kc,
                "edge_out": self.ke, "cond_dim": self.fy + 1 if self.fy else 0, "max_nodes": self.schema.max_nodes}

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        return dict(spec)

    def _base_dict(self) -> dict:
        lp, la, lc, lb = self.lambdas
        return {"name": self.name, "limit": self.limit, "lambda_pos": lp, "lambda_atoms": la, "lambda_charges": lc,
                "lambda_bonds": lb, "cond_drop": self.cond_drop}

    # ---- encoding -------------------------------------------------------------------------------------
    def categories(self, batch: GraphState) -> tuple[Tensor, Tensor, Tensor]:
        """Element, charge and bond indices of a data batch (``SchemaError`` naming an unknown element or charge).

        Shapes:
            returns ``a0 [B, N]``, ``c0 [B, N]`` (0 at padded slots) and ``e0 [B, N, N]`` long (0 off real pairs).
        """
        theirs = batch.schema if batch.schema is not None else self.schema
        if batch.pos is None:
            raise SchemaError("a 3D molecule process needs coordinates: the batch has no pos")
        nt = batch.node_types(theirs)
        nt = torch.where(batch.mask, nt, torch.zeros_like(nt))
        if tuple(theirs.node_categories) == tuple(self.schema.node_categories):
            te, tc = self._tok_elem.to(nt.device), self._tok_charge.to(nt.device)
        else:
            te, tc = [], []
            for tok in theirs.node_categories:
                s, c = parse_atom_token(tok)
                if s not in self.elements or c not in self.charges:
                    used = set(nt[batch.mask].tolist())
                    if theirs.node_categories.index(tok) in used:
                        raise SchemaError(f"sample has atom {tok!r}: element or charge unknown to the model "
                                          f"(elements {list(self.elements)}, charges {list(self.charges)})")
                te.append(self.elements.index(s) if s in self.elements else 0)
                tc.append(self.charges.index(c) if c in self.charges else 0)
            te, tc = torch.tensor(te, device=nt.device), torch.tensor(tc, device=nt.device)
        a0 = torch.where(batch.mask, te[nt], torch.zeros_like(nt))
        c0 = torch.where(batch.mask, tc[nt], torch.zeros_like(nt))
        if batch.e.shape[-1] != self.ke and batch.schema is None:
            raise SchemaError(f"batch edge channels: expected {self.ke}, got {batch.e.shape[-1]}")
        et = batch.edge_types()
        if batch.schema is not None and tuple(batch.schema.edge_categories) != tuple(self.schema.edge_categories):
            ours = self.schema.edge_categories
            bad = [c for c in batch.schema.edge_categories if c not in ours]
            if bad and bool((et[pair_mask(batch.mask)] >= 1).any()):
                used = {batch.schema.edge_categories[i] for i in set(et[pair_mask(batch.mask)].tolist())}
                if used & set(bad):
                    raise SchemaError(f"sample has bond categories the model does not know: {sorted(used & set(bad))}")
            table = torch.tensor([ours.index(c) if c in ours else 0 for c in batch.schema.edge_categories],
                                 device=et.device)
            et = table[et]
        return a0, c0, symmetric_indices(et, batch.mask)

    def onehot(self, a: Tensor, c: Tensor, e: Tensor, pos: Tensor, mask: Tensor, dtype=torch.float32,
               y: Tensor | None = None) -> GraphState:
        """A process state from indices and coordinates (``pos`` re-centred)."""
        m = mask.unsqueeze(-1).to(dtype)
        x = torch.cat([F.one_hot(a.clamp(min=0), self.ka).to(dtype), F.one_hot(c.clamp(min=0), self.kc).to(dtype)],
                      -1) * m
        eo = F.one_hot(torch.where(pair_mask(mask), e, torch.zeros_like(e)), self.ke).to(dtype)
        return GraphState(x=x, e=eo, mask=mask, pos=centre(pos.to(dtype), mask), y=y, schema=self.schema)

    def encode(self, batch: GraphState) -> GraphState:
        """Data batch -> clean process state (coordinates centred, ``y`` carried along)."""
        a0, c0, e0 = self.categories(batch)
        dtype = batch.pos.dtype if batch.pos.is_floating_point() else torch.float32
        return self.onehot(a0, c0, e0, batch.pos, batch.mask, dtype, y=batch.y)

    @property
    def decode_schema(self) -> Schema:
        """The schema of decoded states: the data's atom tokens, then every other element-charge combination of
        the vocabularies in a fixed order (so that every decoded batch indexes tokens the same way)."""
        combos = [atom_token(el, ch) for el in self.elements for ch in self.charges]
        return self.schema.extended(node_categories=combos)

    def decode(self, state: GraphState) -> GraphState:
        """Process state -> data state in :attr:`decode_schema`: atom tokens (element + charge), bonds and centred
        coordinates."""
        a = state.x[..., : self.ka].argmax(-1)
        c = state.x[..., self.ka: self.ka + self.kc].argmax(-1)
        schema = self.decode_schema
        toks = schema.node_categories
        table = torch.tensor([[toks.index(atom_token(el, ch)) for ch in self.charges] for el in self.elements],
                             dtype=torch.long, device=a.device)
        nt = table[a, c]
        et = symmetric_indices(state.e.argmax(-1), state.mask)
        pos = state.pos if state.pos is not None else torch.zeros(*state.mask.shape, 3, device=state.device)
        return GraphState.from_types(nt, et, state.mask, schema, pos=pos.float(), y=state.y)

    # ---- states ---------------------------------------------------------------------------------------
    def sample_state(self, pa: Tensor, pc: Tensor, pe: Tensor, pos: Tensor, mask: Tensor, source,
                     dtype=torch.float32) -> GraphState:
        """Draw element, charge and bond categories from probabilities (per-sample uniforms) around ``pos``.

        Shapes:
            pa: ``[B, N, Ka]``; pc: ``[B, N, Kc]``; pe: ``[B, N, N, Ke]``; pos: ``[B, N, 3]``.
        """
        full = self.schema.max_nodes
        u_a, u_e = draw_uniforms(source, mask, full)
        u_c = self._uniforms(source, mask)
        a = sample_categorical(pa, u_a)
        c = sample_categorical(pc, u_c)
        m = mask.unsqueeze(-1).to(dtype)
        x = torch.cat([F.one_hot(a, self.ka).to(dtype), F.one_hot(c, self.kc).to(dtype)], -1) * m
        e = sample_edges(pe, u_e, mask, dtype)
        return GraphState(x=x, e=e, mask=mask, pos=centre(pos.to(dtype), mask), schema=self.schema)

    def _uniforms(self, source, mask: Tensor) -> Tensor:
        """One more uniform per atom (the charges' draw), ``[B, N]`` float64."""
        from ..samplers.noise import SampleNoise

        b, n = mask.shape
        if isinstance(source, SampleNoise):
            u = source.rand(max(self.schema.max_nodes, n))[:, :n]
        else:
            gdev = source.device if source is not None else mask.device
            u = torch.rand((b, n), generator=source, device=gdev)
        return u.to(mask.device, torch.float64)

    def gaussian(self, mask: Tensor, source, dtype=torch.float32) -> Tensor:
        """Centred standard-normal coordinates (per-sample streams from a ``SampleNoise``, else ``source`` as a
        ``torch.Generator`` or ``None``).

        Shapes:
            returns ``[B, N, 3]``.
        """
        from ..samplers.noise import SampleNoise

        b, n = mask.shape
        if isinstance(source, SampleNoise):
            z = source.randn_nodes(max(self.schema.max_nodes, n), n, 3)
        else:
            gdev = source.device if source is not None else mask.device
            z = torch.randn((b, n, 3), generator=source, device=gdev)
        return centre(z.to(mask.device, dtype), mask)

    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator) -> GraphState:
        """Molecules of ``n_nodes`` atoms from the limit: categories from ``m``, centred Gaussian coordinates."""
        from ..samplers.noise import SampleNoise

        device = generator.device if isinstance(generator, SampleNoise) else n_nodes.device
        mask = mask_from_counts(n_nodes, device)
        b, n = mask.shape
        pos = self.gaussian(mask, generator)
        return self.sample_state(self.m_a.to(device).expand(b, n, -1), self.m_c.to(device).expand(b, n, -1),
                                 self.m_e.to(device).expand(b, n, n, -1), pos, mask, generator)

    def noisy_categories(self, a0: Tensor, c0: Tensor, e0: Tensor, keep_x: Tensor, keep_e: Tensor) -> tuple:
        """Probabilities of ``keep * onehot(x0) + (1 - keep) * m`` for elements, charges and bonds.

        Shapes:
            keep_x, keep_e: ``[B]`` (per-molecule keep probability of node and of bond categories).
        """
        kx, ke = keep_x.double().view(-1, 1, 1), keep_e.double().view(-1, 1, 1, 1)
        dev = a0.device
        pa = kx * F.one_hot(a0, self.ka) + (1 - kx) * self.m_a.to(dev)
        pc = kx * F.one_hot(c0, self.kc) + (1 - kx) * self.m_c.to(dev)
        pe = ke * F.one_hot(e0, self.ke) + (1 - ke) * self.m_e.to(dev)
        return pa, pc, pe

    # ---- predictions ----------------------------------------------------------------------------------
    def _call(self, denoiser, state: GraphState, t: Tensor, cond):
        out = denoiser(state, t, cond)
        la = torch.log_softmax(out.x[..., : self.ka].float(), -1)
        lc = torch.log_softmax(out.x[..., self.ka: self.ka + self.kc].float(), -1)
        le = out.e[..., : self.ke].float()
        le = torch.log_softmax(0.5 * (le + le.transpose(1, 2)), -1)
        return centre(out.pos.float(), state.mask), la, lc, le

    def predict(self, denoiser, state: GraphState, t: Tensor, *, cond: Tensor | None = None,
                guidance: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Clean coordinates and clean-category log-probabilities, classifier-free guided when asked (coordinates
        ``(1 + w) pos_c - w pos_u``; categories as :func:`guided_log_probs`).

        Shapes:
            t: ``[B]``; returns ``pos0 [B, N, 3]``, ``log p_A [B, N, Ka]``, ``log p_C [B, N, Kc]``,
            ``log p_E [B, N, N, Ke]``.
        """
        b = state.batch_size
        if self.fy == 0:
            if cond is not None:
                check_condition(cond, self.schema, b)
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs graph features, the schema has none")
            return self._call(denoiser, state, t, None)
        y = check_condition(cond, self.schema, b)
        uncond = condition_input(torch.zeros(b, self.fy, device=state.device), torch.zeros(b, device=state.device))
        if y is None:
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs a condition (cond), got None")
            return self._call(denoiser, state, t, uncond)
        y = y.to(state.device, torch.float32)
        pc = self._call(denoiser, state, t, condition_input(y, torch.ones(b, device=state.device)))
        if not guidance:
            return pc
        pu = self._call(denoiser, state, t, uncond)
        w = float(guidance)
        pos = (1 + w) * pc[0] - w * pu[0]
        return (pos,) + tuple(guided_log_probs(c, u, w) for c, u in zip(pc[1:], pu[1:]))

    # ---- training -------------------------------------------------------------------------------------
    def _train_cond(self, batch: GraphState, generator):
        if self.fy == 0:
            return None
        if batch.y is None:
            raise ConfigError(f"batch.y: the schema names {self.fy} graph features, the batch has none")
        y = check_condition(batch.y, self.schema, batch.batch_size, "batch.y").float()
        return drop_conditions(y, self.cond_drop, generator)

    def loss_terms(self, out: GraphState, pos0: Tensor, a0: Tensor, c0: Tensor, e0: Tensor,
                   mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-molecule loss terms of a denoiser output against the clean data: squared coordinate error (summed
        over x, y, z, averaged over atoms; prediction re-centred), element and charge cross entropy (averaged over
        atoms), bond cross entropy (averaged over unordered atom pairs, logits symmetrised).

        Shapes:
            returns four ``[B]`` tensors.
        """
        m = mask.float()
        n = m.sum(1).clamp(min=1)
        pos_hat = centre(out.pos.float(), mask)
        l_pos = ((pos_hat - pos0.float()) ** 2).sum(-1).mul(m).sum(1) / n
        la = -torch.log_softmax(out.x[..., : self.ka].float(), -1).gather(-1, a0.unsqueeze(-1)).squeeze(-1)
        lc = -torch.log_softmax(out.x[..., self.ka: self.ka + self.kc].float(), -1).gather(
            -1, c0.unsqueeze(-1)).squeeze(-1)
        le = out.e[..., : self.ke].float()
        le = -torch.log_softmax(0.5 * (le + le.transpose(1, 2)), -1).gather(-1, e0.unsqueeze(-1)).squeeze(-1)
        up = upper_pair_mask(mask).float()
        return (l_pos, (la * m).sum(1) / n, (lc * m).sum(1) / n, (le * up).sum((1, 2)) / up.sum((1, 2)).clamp(min=1))

    def weighted(self, terms) -> Tensor:
        """``lambda_pos l_pos + lambda_atoms l_atoms + lambda_charges l_charges + lambda_bonds l_bonds``."""
        return sum(w * t for w, t in zip(self.lambdas, terms))
