"""jaxviz.viz.images: uint8 conversion, PNG files, image grids and matplotlib figures."""

import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from jaxviz.errors import ShapeError
from jaxviz.viz import figure_to_array, image_grid, save_figure, save_png, to_uint8


def test_to_uint8_scales_clips_and_accepts_jax():
    x = jnp.array([[-0.5, 0.0, 0.5, 1.0, 2.0]])
    np.testing.assert_array_equal(to_uint8(x), [[0, 0, 128, 255, 255]])
    assert to_uint8(np.array([np.nan], np.float32))[0] == 0
    u = np.arange(4, dtype=np.uint8)
    assert to_uint8(u) is u


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_save_png_roundtrip(tmp_path, shape):
    img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    path = save_png(tmp_path / "a" / "b" / "img.png", img.astype(np.float32) / 255)
    assert path.is_file()
    with Image.open(path) as f:
        back = np.asarray(f)
    np.testing.assert_array_equal(back, img.reshape(back.shape))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 1), (4,), (4, 4, 2)])
def test_save_png_bad_shape(tmp_path, shape):
    with pytest.raises(ShapeError, match=r"HxW.*got shape"):
        save_png(tmp_path / "x.png", np.zeros(shape))


def test_grid_shape_arithmetic():
    imgs = np.zeros((5, 4, 6, 3), np.float32)
    # 3 columns, 2 rows, 2 px padding between and around tiles.
    assert image_grid(imgs, ncols=3).shape == (2 * 4 + 3 * 2, 3 * 6 + 4 * 2, 3)
    assert image_grid(imgs, ncols=3, pad=0).shape == (8, 18, 3)
    assert image_grid(imgs).shape == (2 * 4 + 3 * 2, 3 * 6 + 4 * 2, 3)  # ceil(sqrt(5)) = 3
    assert image_grid(imgs, ncols=10, pad=1).shape == (6, 5 * 6 + 6, 3)  # ncols capped at N


def test_grid_places_tiles_and_padding():
    imgs = np.stack([np.full((2, 2, 3), v, np.float32) for v in (0.0, 0.25, 0.5)])
    grid = image_grid(imgs, ncols=2, pad=1, pad_value=1.0)
    assert grid.dtype == np.float32
    np.testing.assert_array_equal(grid[1:3, 1:3], 0.0)
    np.testing.assert_array_equal(grid[1:3, 4:6], 0.25)
    np.testing.assert_array_equal(grid[4:6, 1:3], 0.5)
    np.testing.assert_array_equal(grid[4:6, 4:6], 1.0)  # empty slot keeps the pad value
    assert (grid[0] == 1.0).all()


def test_grid_grey_becomes_rgb_and_scale_is_nearest():
    grey = np.random.default_rng(1).random((2, 3, 3, 1)).astype(np.float32)
    grid = image_grid(grey, ncols=2, pad=0, scale=4)
    assert grid.shape == (12, 24, 3)
    np.testing.assert_array_equal(grid[..., 0], grid[..., 2])
    np.testing.assert_array_equal(grid[:4, :4, 0], grey[0, 0, 0, 0])  # one pixel -> 4x4 block


def test_grid_accepts_list_of_hw_images_and_uint8():
    grid = image_grid([np.zeros((3, 3)), np.full((3, 3, 1), 255, np.uint8)], pad=0)
    assert grid.shape == (3, 6, 3)
    assert grid[:, 3:].min() == 1.0


def test_grid_labels_make_tiles_taller():
    imgs = np.zeros((4, 10, 30, 3), np.float32)
    plain = image_grid(imgs, ncols=2)
    labelled = image_grid(imgs, ncols=2, labels=["cat", "dog", "7", "<b>"])
    assert labelled.shape[1] == plain.shape[1]
    assert labelled.shape[0] > plain.shape[0]
    fixed = image_grid(imgs, ncols=2, labels=range(4), label_height=9)
    assert fixed.shape[0] == plain.shape[0] + 2 * 9
    strip = labelled[2 + 10 : 2 + 10 + (labelled.shape[0] - plain.shape[0]) // 2, 2 : 2 + 30]
    assert strip.min() < 0.5 < strip.max()  # dark text drawn on the white strip


def test_grid_bad_input():
    with pytest.raises(ShapeError, match="NHWC"):
        image_grid(np.zeros((1, 2, 3, 4, 3)))
    with pytest.raises(ShapeError, match=r"images\[None\]"):
        image_grid(np.zeros((4, 4, 3)))
    with pytest.raises(ShapeError, match="2 labels for 3 images"):
        image_grid(np.zeros((3, 4, 4, 1)), labels=["a", "b"])
    with pytest.raises(ShapeError, match="one size"):
        image_grid([np.zeros((3, 3)), np.zeros((4, 4))])
    with pytest.raises(ShapeError, match="at least one"):
        image_grid(np.zeros((0, 4, 4, 3)))


def test_figure_helpers(tmp_path):
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    arr = figure_to_array(fig)
    assert arr.shape == (50, 100, 3) and arr.dtype == np.uint8
    path = save_figure(fig, tmp_path / "sub" / "fig.png", dpi=50)
    with Image.open(path) as f:
        assert f.format == "PNG" and f.mode == "RGBA"
