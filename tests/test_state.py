import pytest
import torch

from graphdiff import GraphState, Schema, SchemaError


def random_state(b=3, n=6, kx=3, ke=3, seed=0, pos=False):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, n + 1, (b,), generator=g)
    mask = torch.arange(n).unsqueeze(0) < sizes.unsqueeze(1)
    nt = torch.randint(0, kx, (b, n), generator=g)
    et = torch.randint(0, ke, (b, n, n), generator=g)
    et = torch.triu(et, 1)
    et = et + et.transpose(1, 2)
    schema = Schema(node_categories=tuple("abc"[:kx]), edge_categories=("none", *"xy"[: ke - 1]))
    p = torch.randn(b, n, 3, generator=g) if pos else None
    return GraphState.from_types(nt, et, mask, schema, pos=p, y=torch.randn(b, 2, generator=g))


def test_from_types_is_masked_and_symmetric():
    s = random_state()
    assert s.is_symmetric()
    pad = ~s.mask
    assert s.x[pad].abs().sum() == 0
    assert s.e[~s.pair_mask()].abs().sum() == 0  # diagonal and padded pairs are all-zero
    # every real off-diagonal pair is one-hot
    assert torch.all(s.e[s.pair_mask()].sum(-1) == 1)


def test_permute_relabels_nodes_consistently():
    s = random_state(b=2, n=5)
    perm = torch.tensor([4, 2, 0, 1, 3])
    p = s.permute(perm)
    assert torch.equal(p.x, s.x[:, perm])
    assert torch.equal(p.e, s.e[:, perm][:, :, perm])
    inv = torch.argsort(perm)
    back = p.permute(inv)
    assert torch.equal(back.x, s.x) and torch.equal(back.e, s.e) and torch.equal(back.mask, s.mask)


def test_split_and_cat_round_trip():
    s = random_state(b=4, n=7)
    parts = s.split()
    assert [int(p.max_nodes) for p in parts] == s.n_nodes.tolist()
    joined = GraphState.cat(parts)
    assert torch.equal(joined.mask, s.mask[:, : joined.max_nodes])
    assert torch.equal(joined.x, s.x[:, : joined.max_nodes])
    assert torch.equal(joined.e, s.e[:, : joined.max_nodes, : joined.max_nodes])
    assert torch.equal(joined.y, s.y)


def test_compact_moves_real_nodes_first():
    s = random_state(b=2, n=5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    shuffled = s.permute(perm)
    c = shuffled.compact()
    assert torch.all(c.mask[:, :-1].int() >= c.mask[:, 1:].int())  # no hole before a real node
    assert torch.equal(c.n_nodes, s.n_nodes)


def test_symmetrize_upper_and_mean():
    s = random_state()
    e = s.e.clone()
    e[:, 0, 1] = torch.tensor([0.0, 0.0, 1.0])
    broken = GraphState(x=s.x, e=e, mask=s.mask)
    assert not broken.is_symmetric()
    fixed = broken.symmetrized("upper")
    assert fixed.is_symmetric()
    assert torch.equal(fixed.e[:, 1, 0], fixed.e[:, 0, 1])
    assert broken.symmetrized("mean").is_symmetric()


def test_pos_is_centred_under_mask():
    s = random_state(pos=True)
    centre = (s.pos * s.mask.unsqueeze(-1)).sum(1) / s.n_nodes.unsqueeze(-1)
    assert torch.allclose(centre, torch.zeros_like(centre), atol=1e-5)
    assert s.pos[~s.mask].abs().sum() == 0


def test_to_dtype_keeps_mask_bool():
    s = random_state().to(torch.float64)
    assert s.x.dtype == torch.float64 and s.mask.dtype == torch.bool


def test_shape_errors_are_one_line():
    with pytest.raises(SchemaError, match="x"):
        GraphState(x=torch.zeros(2, 3), e=torch.zeros(2, 3, 3, 2), mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(SchemaError, match="disagree"):
        GraphState(x=torch.zeros(2, 4, 1), e=torch.zeros(2, 3, 3, 2), mask=torch.ones(2, 3, dtype=torch.bool))


def test_from_types_rejects_unknown_category():
    schema = Schema.plain_graph()
    with pytest.raises(SchemaError, match="outside"):
        GraphState.from_types(torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long),
                              torch.ones(1, 2, dtype=torch.bool), schema)


def test_blocks_annotation_follows_every_node_operation():
    s = random_state(b=4, n=7)
    # a distinct tag per real node (its slot + 10 * graph), -1 at padding, to see where every node went
    tag = torch.arange(7).unsqueeze(0) + 10 * torch.arange(4).unsqueeze(1)
    s = GraphState(x=s.x, e=s.e, mask=s.mask, y=s.y, schema=s.schema, blocks=torch.where(s.mask, tag, -1))
    perm = torch.tensor([6, 2, 0, 5, 1, 3, 4])
    p = s.permute(perm)
    assert torch.equal(p.blocks, s.blocks[:, perm])
    assert torch.equal(p.compact().blocks[p.compact().mask], p.blocks[p.mask])  # compact keeps real nodes in order
    parts = s.split()
    joined = GraphState.cat(parts)
    assert torch.equal(joined.blocks, s.blocks[:, : joined.max_nodes])
    wide = s.pad_to(9)
    assert wide.blocks.shape == (4, 9) and bool((wide.blocks[:, 7:] == -1).all())
    assert torch.equal(s[1:3].blocks, s.blocks[1:3]) and torch.equal(s[2].blocks, s.blocks[2:3])
    assert s.to(torch.float64).blocks.dtype == torch.long
    c = s.clone()
    c.blocks[0, 0] = 99
    assert s.blocks[0, 0] != 99
    # an annotation only some states carry is dropped by cat rather than half-filled
    assert GraphState.cat([parts[0], random_state(b=1, n=3)]).blocks is None
    with pytest.raises(SchemaError, match="blocks must be integer"):
        GraphState(x=s.x, e=s.e, mask=s.mask, blocks=torch.zeros(4, 6, dtype=torch.long))


def test_integer_indexing_and_iteration_stop_at_the_batch_end():
    s = GraphState(x=torch.randn(3, 4, 2), e=torch.zeros(3, 4, 4, 2), mask=torch.ones(3, 4, dtype=torch.bool))
    assert [len(g) for g in s] == [1, 1, 1] and len(list(s)) == 3
    assert torch.equal(s[-1].x, s.x[2:]) and torch.equal(s[-3].x, s.x[:1])
    for bad in (3, -4):
        with pytest.raises(IndexError, match="out of range"):
            s[bad]
