"""Image datasets: digits (offline, scikit-learn), a .npy array, a folder of PNGs; splits, labels, bad files."""

import numpy as np
import pytest
import torch

from graphdiff.adapters import adapter_from_schema
from graphdiff.data import load_dataset
from graphdiff.errors import DataError


def test_digits_counts_split_and_labels():
    ds = load_dataset("digits", labels=True)
    assert len(ds) == 1797 and ds.split_sizes() == {"train": 1438, "val": 180, "test": 179}
    b = ds.split("train").batch([0, 1, 2])
    assert b.x.shape == (3, 64, 1) and b.y.shape == (3, 10) and torch.equal(b.y.sum(1), torch.ones(3))
    assert float(b.x.min()) >= -1 and float(b.x.max()) <= 1
    assert ds.schema.graph_features == tuple(f"class_{k}" for k in range(10))
    assert adapter_from_schema(ds.schema).value_range == (0.0, 16.0)
    # the three splits are disjoint and cover everything
    idx = [set(ds.split(s)._idx.tolist()) for s in ("train", "val", "test")]
    assert not (idx[0] & idx[1]) and not (idx[1] & idx[2]) and sum(map(len, idx)) == 1797


def test_npy_array_and_png_folder(tmp_path):
    from PIL import Image

    arr = np.random.default_rng(0).uniform(0, 5, (10, 6, 5)).astype(np.float32)
    np.save(tmp_path / "imgs.npy", arr)
    ds = load_dataset(str(tmp_path / "imgs.npy"))
    assert len(ds) == 10 and ds.grid.height == 6 and ds.grid.width == 5
    back = ds.grid.from_state(ds.batch(range(10)))
    np.testing.assert_allclose(back[:, 0].numpy(), arr, atol=1e-5)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 7), 40 * i, np.uint8)).save(folder / f"{i}.png")
    ds2 = load_dataset(str(folder))
    assert ds2.grid.value_range == (0.0, 255.0) and ds2.batch([2]).x.shape == (1, 28, 1)


def test_bad_image_files_are_one_line_errors(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"flat.npy: wants \[G, H, W\] or \[G, C, H, W\], got shape \[5\]"):
        load_dataset(str(tmp_path / "flat.npy"))
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(DataError, match="junk.npy: not a readable .npy array"):
        load_dataset(str(tmp_path / "junk.npy"))
    bad = np.zeros((2, 3, 3))
    bad[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npy"))


def test_16_bit_grey_pngs_keep_their_depth_and_a_mixed_folder_is_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "deep"
    folder.mkdir()
    values = [0, 300, 40000]  # above 255: an 8-bit conversion would cut them
    for i, v in enumerate(values):
        Image.fromarray(np.full((4, 5), v, np.uint16)).save(folder / f"{i}.png")
    ds = load_dataset(str(folder))
    assert ds.grid.value_range == (0.0, 65535.0) and ds.schema.extra["fixed_graph"]["channels"] == 1
    back = ds.grid.from_state(ds.batch([0, 1, 2]))[:, 0, 0, 0].numpy()
    np.testing.assert_allclose(back, values, rtol=1e-4, atol=0.5)  # grey levels kept, not clipped to black/white
    Image.fromarray(np.full((4, 5), 7, np.uint8)).save(folder / "3.png")
    with pytest.raises(DataError, match=r"3\.png: 8-bit, while 0\.png is 16-bit; give the folder one bit depth"):
        load_dataset(str(folder))
