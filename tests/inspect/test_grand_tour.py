import os
import shutil
import subprocess

import jax
import numpy as np
import pytest
from PIL import Image

from jaxviz import inspect as I
from jaxviz.errors import ShapeError


def _views():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    f = np.eye(4, 16)[y] * 3 + rng.standard_normal((120, 16))
    return {"a": I.tour_view(f, jax.random.key(0)), "b": I.tour_view(f[:, :6], jax.random.key(1), dims=3)}, y


def test_tour_is_a_smooth_rotation():
    views, _ = _views()
    v = views["a"]
    assert v.points.shape == (120, 10) and np.linalg.norm(v.points, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(v.step @ v.step.T, np.eye(10), atol=1e-10)
    frames = I.tour_frames(v, 50)
    np.testing.assert_allclose(frames[0], v.points[:, :2], atol=1e-6)  # starts at the first two principal axes
    assert np.linalg.norm(frames, axis=-1).max() <= 1.0 + 1e-5  # a projection of a rotation never stretches
    step = np.abs(np.diff(frames, axis=0)).max()
    assert 0 < step < 0.05  # smooth
    with pytest.raises(ShapeError):
        I.tour_view(np.ones((1, 5)), jax.random.key(0))


def test_gif(tmp_path):
    views, y = _views()
    path = I.grand_tour_gif(views["a"], y, tmp_path / "t.gif", frames=6, size=64)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size == (64, 64)


def _browser():
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_page_is_self_contained_and_draws_in_a_real_browser(tmp_path):
    views, y = _views()
    page = I.grand_tour_html(views, y, tmp_path / "tour.html", class_names=["w", "x", "y", "z"])
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script src" not in text
    browser = _browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium: setup.sh --dev installs chromium-headless-shell as root")
        pytest.skip("no Chromium here: apt-get install chromium-headless-shell")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=1500"]
    dom = subprocess.run([*cmd, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    painted = int(dom.split('data-painted-pixels="')[1].split('"')[0])
    assert painted >= 100  # 120 points of 3x3 px, some overlapping
    assert 'data-layer="a"' in dom and '<option value="1">b</option>' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*cmd, "--window-size=600,800", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    coloured = (px.max(-1) - px.min(-1)) > 60  # the class colours; the page is otherwise black on white
    assert coloured.sum() >= 300
