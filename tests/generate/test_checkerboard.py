"""The checkerboard score on patterns with known answers."""

import numpy as np
import pytest

from jaxviz.data import photo, resize
from jaxviz.errors import ShapeError
from jaxviz.generate import checkerboard_score


def test_a_period_two_pattern_scores_far_above_noise_and_a_photo_below():
    rng = np.random.default_rng(0)
    img = resize(photo("astronaut"), 64)
    board = img.copy()
    board[::2, ::2] += 0.05  # a faint stride-2 checkerboard printed on the photo
    noise = rng.random((8, 64, 64, 3))
    s_img, s_board, s_noise = checkerboard_score(img)[0], checkerboard_score(board)[0], checkerboard_score(noise)
    assert s_img < 0.5 < 0.7 < s_noise.mean() < 1.5 < 5 < s_board
    assert checkerboard_score(board, gradient=True)[0] > 10 * checkerboard_score(img, gradient=True)[0]


def test_the_score_reads_the_stride_it_is_given():
    x = np.zeros((1, 48, 48, 1))
    x[:, ::3, ::3] = 1.0  # period 3
    assert checkerboard_score(x, stride=3)[0] > 2 * checkerboard_score(x[:, :48, :48], stride=2)[0]


def test_sizes_that_do_not_divide_are_refused():
    with pytest.raises(ShapeError, match="multiples of the stride"):
        checkerboard_score(np.zeros((1, 33, 32, 3)))


def test_tiles_cut_a_mosaic_back_into_its_outputs():
    from jaxviz.generate import tiles
    from jaxviz.viz import image_grid

    outputs = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(tiles(image_grid(outputs, ncols=3, pad=0), 8), outputs)
    with pytest.raises(ShapeError, match="multiples of 8"):
        tiles(np.zeros((12, 16, 3)), 8)
