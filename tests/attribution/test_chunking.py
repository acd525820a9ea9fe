"""Backend-aware default chunking of the multi-sample methods (``chunk_size="auto"``)."""

import jax
import numpy as np
import pytest

from jaxviz.attribution import _common as C
from jaxviz.errors import JaxvizError


def test_auto_chunk_keeps_about_one_batch_per_step_on_cpu(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert C.auto_chunk("auto", 16, 25, 8) == 1  # a batch of 16: one noisy copy per step
    assert C.auto_chunk("auto", 32, 50, 16) == 1
    assert C.auto_chunk("auto", 1, 25, 8) == 13  # one image: 25 copies in two even steps, not 16 + 9 padded
    assert C.auto_chunk("auto", 4, 50, 16) == 4  # 13 steps of 4 copies x 4 images
    assert C.auto_chunk(5, 16, 25, 8) == 5 and C.auto_chunk(None, 16, 25, 8) is None  # explicit values pass through


def test_auto_chunk_keeps_accelerator_defaults(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert C.auto_chunk("auto", 16, 25, 8) == 8
    assert C.auto_chunk("auto", 1, 677, 32) == 32


def test_a_bad_chunk_size_is_still_an_error():
    with pytest.raises(JaxvizError, match="chunk_size must be a positive integer"):
        C.chunked_sum(lambda a: a[None], np.ones((4, 2)), C.auto_chunk("big", 2, 4, 8))
