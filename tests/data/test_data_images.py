"""Bundled photos, image files, channel conversion and resizing."""

import numpy as np
import pytest
from PIL import Image

import jaxviz.data as data
from jaxviz.errors import DataNotFoundError, JaxvizError, ShapeError


@pytest.mark.parametrize("name", data.PHOTOS)
def test_every_photo_loads(name):
    x = data.photo(name)
    assert x.ndim == 3 and x.dtype == np.float32
    assert x.shape[-1] == (1 if name in ("camera", "moon", "coins", *data.TEXTURES) else 3)
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.5


def test_photo_shapes_and_errors():
    chelsea = data.photo("chelsea")
    assert chelsea.shape == (300, 451, 3)
    assert not chelsea.flags.writeable
    assert data.photo("brick").shape == (512, 512, 1)
    with pytest.raises(JaxvizError, match="chelsea"):
        data.photo("dog")


def test_load_grey_png(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(pixels).save(tmp_path / "g.png")
    grey = data.load_image(tmp_path / "g.png", mode=None)
    assert grey.shape == (3, 4, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey[..., 0], pixels / 255, atol=1e-6)
    rgb = data.load_image(str(tmp_path / "g.png"))
    assert rgb.shape == (3, 4, 3)
    np.testing.assert_array_equal(rgb[..., 2], grey[..., 0])


def test_load_16_bit_png(tmp_path):
    pixels = np.array([[0, 1000], [40000, 65535]], np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    x = data.load_image(tmp_path / "deep.png", mode="L")
    np.testing.assert_allclose(x[..., 0], pixels / 65535, atol=1e-6)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 255, 0)  # transparent
    rgba[1, 0] = (0, 0, 0, 51)  # 20% black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = data.load_image(tmp_path / "a.png")
    assert x.shape == (2, 2, 3)
    np.testing.assert_allclose(x[0, 0], [1, 0, 0])
    np.testing.assert_allclose(x[0, 1], [1, 1, 1])
    np.testing.assert_allclose(x[1, 0], [0.8, 0.8, 0.8], atol=1e-6)


def test_palette_and_grey_conversion(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (255, 0, 0)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    x = data.load_image(tmp_path / "p.png", mode=None)
    np.testing.assert_allclose(x[0, 0], [1, 0, 0])
    grey = data.load_image(tmp_path / "p.png", mode="L")
    assert grey.shape == (4, 4, 1)
    np.testing.assert_allclose(grey[0, 0], [0.299], atol=1e-6)


def test_exif_rotated_jpeg(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # as stored: wide, red top half, blue bottom half
    stored[:10] = (255, 0, 0)
    stored[10:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(stored).save(tmp_path / "r.jpg", exif=exif, quality=95)
    x = data.load_image(tmp_path / "r.jpg")
    assert x.shape == (40, 20, 3)  # upright: tall
    assert x[20, 17, 0] > 0.8 and x[20, 17, 2] < 0.2  # the top (red) is now on the right
    assert x[20, 2, 2] > 0.8 and x[20, 2, 0] < 0.2


def test_load_image_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="missing.png") as info:
        data.load_image(tmp_path / "missing.png")
    assert isinstance(info.value, FileNotFoundError)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(JaxvizError, match="cannot read image"):
        data.load_image(tmp_path / "text.png")
    with pytest.raises(JaxvizError, match="mode"):
        data.load_image(tmp_path / "text.png", mode="CMYK")


def test_channel_conversions():
    rgb = np.zeros((2, 3, 4, 3), np.float32)
    rgb[..., 0] = 1
    grey = data.to_grey(rgb)
    assert grey.shape == (2, 3, 4, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, 0.299, atol=1e-6)
    assert data.to_grey(grey) is grey
    back = data.to_rgb(grey)
    assert back.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(back[..., 1], grey[..., 0])
    assert data.to_rgb(rgb) is rgb
    with pytest.raises(ShapeError):
        data.to_rgb(np.zeros((4, 4, 2)))
    with pytest.raises(ShapeError):
        data.to_grey(np.zeros((4, 4)))


def test_resize_center_crop_and_plain():
    chelsea = data.photo("chelsea")
    assert data.resize(chelsea, 224).shape == (224, 224, 3)
    assert data.resize(chelsea, (100, 50), crop=None).shape == (100, 50, 3)
    batch = data.resize(np.stack([chelsea, chelsea]), (120, 200), method="bicubic")
    assert batch.shape == (2, 120, 200, 3) and batch.dtype == np.float32
    assert 0 <= batch.min() and batch.max() <= 1


def test_center_crop_keeps_the_middle():
    x = np.zeros((10, 30, 1), np.float32)
    x[:, 10:20] = 1
    np.testing.assert_allclose(data.resize(x, 10), 1, atol=1e-6)
    stretched = data.resize(x, 10, crop=None)
    assert stretched[:, 0].max() < 0.1 and stretched[:, 5].min() > 0.9


def test_resize_errors():
    with pytest.raises(ShapeError):
        data.resize(np.zeros((4, 4)), 2)
    with pytest.raises(JaxvizError, match="bilinear"):
        data.resize(np.zeros((4, 4, 1)), 2, method="spline")
    with pytest.raises(JaxvizError, match="crop"):
        data.resize(np.zeros((4, 4, 1)), 2, crop="top")
