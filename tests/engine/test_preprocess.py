"""Working size, grid transforms and the move pairing (§1, §8.1, §14.8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from engine.preprocess import crop_or_pad, resize_mask, resize_shift_crop, shift, transform_index, working_size


@pytest.mark.parametrize(
    ("size", "res", "expected"),
    [
        ((512, 512), 768, (768, 768)),
        ((1024, 768), 768, (896, 640)),
        ((100, 300), 128, (64, 192)),
        ((8, 8), 64, (64, 64)),
    ],
)
def test_working_size(size: tuple[int, int], res: int, expected: tuple[int, int]) -> None:
    assert working_size(size, res) == expected


@given(st.integers(32, 4000), st.integers(32, 4000), st.sampled_from([128, 256, 512, 768, 1024]))
def test_working_size_properties(w: int, h: int, res: int) -> None:
    ww, hh = working_size((w, h), res)
    assert ww % 64 == 0 and hh % 64 == 0 and ww >= 64 and hh >= 64


def test_shift_does_not_wrap() -> None:
    x = torch.arange(1, 10).reshape(3, 3)
    assert shift(x, 0, 1).tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shift(x, -1, 0).tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert shift(x, 5, 0).abs().sum() == 0


def test_crop_or_pad_centres() -> None:
    x = torch.arange(1, 17).reshape(4, 4)
    assert crop_or_pad(x, (2, 2)).tolist() == [[6, 7], [10, 11]]
    assert crop_or_pad(torch.ones(2, 2), (4, 4)).tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]


def test_resize_shift_crop_scales_about_the_centre() -> None:
    x = torch.zeros(8, 8)
    x[3:5, 3:5] = 1
    y = resize_shift_crop(x, 2.0, 0, 0)  # 16×16 canvas, centre crop: the object doubles in place
    assert y.sum() == 16 and y[2:6, 2:6].sum() == 16


def test_move_pairing_is_the_translation() -> None:
    grid = (6, 6)
    pairs = transform_index(grid, 1, 2, grid)  # r = 1: canvas = grid
    src = pairs[3, 4].item() - 1
    assert divmod(src, 6) == (2, 2)  # the pixel at (3, 4) came from (2, 2)
    assert (pairs[0] == 0).all() and (pairs[:, :2] == 0).all()  # nothing lands from outside


def test_mask_resize_is_binary_and_midpoint() -> None:
    m = np.zeros((10, 10), np.uint8)
    m[2:8, 2:8] = 255
    out = resize_mask(Image.fromarray(m), (20, 20))
    assert out.dtype == bool and out.shape == (20, 20)
    assert 100 < out.sum() < 196
