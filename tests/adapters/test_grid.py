import numpy as np
import pytest
import torch

from graphdiff.adapters import ImageGrid, adapter_from_schema, save_image_grid
from graphdiff.errors import DataError


def test_round_trip_and_layout():
    g = ImageGrid(3, 5, channels=2, value_range=(0, 16))
    imgs = torch.rand(4, 2, 3, 5) * 16
    s = g.to_state(imgs)
    assert s.x.shape == (4, 15, 2) and s.e.shape == (4, 15, 15, 2) and s.pos.shape == (4, 15, 3)
    assert float(s.x.min()) >= -1 and float(s.x.max()) <= 1
    torch.testing.assert_close(g.from_state(s), imgs)
    # pixel (r, c) is node r * W + c with its value at x[node]
    assert torch.isclose(s.x[1, 2 * 5 + 3, 1], imgs[1, 1, 2, 3] / 8 - 1)


@pytest.mark.parametrize("conn,kinds,edges", [(4, 2, 3 * 4 + 2 * 5), (8, 3, 3 * 4 + 2 * 5 + 2 * 2 * 4)])
def test_neighbour_edges(conn, kinds, edges):
    g = ImageGrid(3, 5, connectivity=conn)
    e = g.edges()
    assert e.shape[-1] == kinds and torch.equal(e, e.transpose(0, 1))
    assert int(e[..., 1:].sum()) == 2 * edges
    assert torch.equal(e.sum(-1), torch.ones(15, 15))  # exactly one kind per pair, "none" included
    # node 0 (corner) has 2 axial neighbours, +1 diagonal with 8-connectivity
    assert int(e[0, :, 1:].sum()) == (2 if conn == 4 else 3)


def test_observation_marks_nan_and_known():
    g = ImageGrid(2, 2)
    imgs = torch.tensor([[[[0.0, float("nan")], [1.0, 0.5]]]])
    known = torch.tensor([[[[True, True], [False, True]]]])
    vals, obs = g.observation(imgs, known)
    assert obs[0, :, 0].tolist() == [True, False, False, True]
    assert torch.isfinite(vals).all()


def test_schema_rebuilds_the_adapter_and_bad_input_is_one_line():
    g = ImageGrid(4, 4, connectivity=8, value_range=(0, 255))
    g2 = adapter_from_schema(g.schema(3))
    assert g2.to_dict() == g.to_dict()
    with pytest.raises(DataError, match=r"wants images \[B, 1, 4, 4\], got \[2, 1, 4, 5\]"):
        g.to_state(torch.zeros(2, 1, 4, 5))
    with pytest.raises(DataError, match="connectivity must be 4 or 8"):
        ImageGrid(4, 4, connectivity=6)


def test_png_grid(tmp_path):
    from PIL import Image

    p = save_image_grid(np.zeros((5, 1, 8, 8)), tmp_path / "g.png", nrow=3)
    im = np.asarray(Image.open(p))
    assert im.shape == (2 * (8 * 4 + 1) + 1, 3 * (8 * 4 + 1) + 1)
    cell = 8 * 4 + 1
    assert (im[1:cell - 1, 1:cell - 1] == 255).all()  # zero intensity draws as white paper (ink is dark)
    assert (im[cell + 1:2 * cell - 1, 2 * cell + 1:3 * cell - 1] == 255).all()  # the sixth, empty cell is blank too
    assert (im[0, :] == 0).all()  # the frame stays dark
    rgb = np.asarray(Image.open(save_image_grid(np.zeros((5, 3, 8, 8)), tmp_path / "c.png", nrow=3)))
    assert (rgb[cell + 1:2 * cell - 1, 2 * cell + 1:3 * cell - 1] == 255).all()  # white for colour grids too


def test_an_image_model_samples_networkx_grid_graphs_with_intensities():
    from graphdiff import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_pretrained("digits-edm")
    state = pipe.sample(2, steps=2, seed=0, progress=False)
    graphs = pipe.sample(2, steps=2, seed=0, progress=False, output="networkx")
    g = graphs[1]
    assert g.number_of_nodes() == 64 and g.number_of_edges() == 2 * 8 * 7  # the 4-neighbour 8x8 grid
    values = torch.tensor([g.nodes[i]["intensity"] for i in range(64)])
    assert torch.allclose(values, state.x[1, :, 0]) and "label" not in g.nodes[0]
