"""Step previews on the trained demo model: a few small pictures of x̂0 during sampling, of the
documented size, changing from step to step and ending near the output; the edit's output is the
same bit for bit with previews on or off; the projection's fit recovers a known affine map."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

import engine
from diffeditor.cases import sample
from diffeditor.tasks import parse_params
from engine.previews import BUDGET, Budget, LatentProjection, due, preview_size

STEPS = 10
SIZE = 64  # working size 64×64: an 8×8 latent grid, 16×16 previews


@pytest.fixture(scope="module")
def demo_editor() -> engine.Editor:
    return engine.Editor(engine.load_models("demo", device="cpu"))


def _request(steps: int = STEPS) -> engine.EditRequest:
    case = sample("move")
    params = parse_params({**case.params, "steps": steps, "seed": 0, "max_resolution": SIZE})
    return engine.request_from_files(params, dict(case.images))


def test_previews_come_every_kth_step_change_and_leave_the_output_as_it_was(demo_editor: engine.Editor) -> None:
    plain = demo_editor.edit(_request())
    seen: list[tuple[int, int, Image.Image]] = []
    with_previews = demo_editor.edit(_request(), preview=lambda i, n, im: seen.append((i, n, im)), preview_every=3)

    assert np.array_equal(np.asarray(plain.image), np.asarray(with_previews.image))  # bit for bit
    assert [(i, n) for i, n, _ in seen] == [(3, STEPS), (6, STEPS), (9, STEPS), (10, STEPS)]
    decoded = []
    for _, _, image in seen:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=75)  # what the worker sends
        back = Image.open(io.BytesIO(buf.getvalue()))
        assert back.mode == "RGB" and back.size == (16, 16) == preview_size((SIZE // 8, SIZE // 8))
        decoded.append(np.asarray(image, dtype=np.float64))
    changes = [np.abs(a - b).mean() for a, b in zip(decoded, decoded[1:])]
    assert all(c > 0.5 for c in changes), changes  # the edit takes shape: each preview differs
    out = np.asarray(with_previews.image.convert("RGB").resize((16, 16), Image.BOX), dtype=np.float64)
    first, last = (np.abs(d - out).mean() for d in (decoded[0], decoded[-1]))
    assert last < 15 and last < first, (first, last)  # the last preview looks like the output
    assert with_previews.stats.seconds["previews"] < with_previews.stats.seconds["sampling"]
    assert "previews" not in plain.stats.seconds


def test_no_previews_when_every_is_zero(demo_editor: engine.Editor) -> None:
    seen: list[int] = []
    demo_editor.edit(_request(steps=4), preview=lambda i, n, im: seen.append(i), preview_every=0)
    assert seen == []


def test_the_fit_recovers_an_affine_map_and_sizes_are_capped() -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, 16, 24, generator=gen).clamp(-2.5, 2.5)
    weight = torch.randn(5, 3, generator=gen) * 0.03  # small: no colour leaves [0, 1]
    weight[4] = 0.5
    rgb = (z[0].reshape(4, -1).T @ weight[:4] + weight[4]).reshape(16, 24, 3)
    assert 0 < rgb.min() and rgb.max() < 1
    # An image whose 8×8 blocks are flat: its area average onto the grid is `rgb` again.
    arr = (rgb.numpy() * 255).round().astype(np.uint8).repeat(8, 0).repeat(8, 1)
    proj = LatentProjection.fit(z, [Image.fromarray(arr)])
    assert torch.allclose(proj.weight, weight, atol=5e-3)
    assert proj(z).size == (48, 32)
    assert preview_size((64, 64)) == (128, 128) and preview_size((96, 192)) == (256, 128)
    assert [s for s in range(1, 11) if due(s, 10, 4)] == [4, 8, 10] and not due(3, 10, 0)


def test_the_two_image_fit_of_appearance_and_paste_pairs_each_latent_with_its_own_image() -> None:
    """Appearance and paste fit on both inputs (latents (2, 4, h, w), two images): one map recovered
    from both, each latent paired with its own image; a count mismatch is an error, not a silent cut."""
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(5, 3, generator=gen) * 0.03
    weight[4] = 0.5
    z = torch.randn(2, 4, 8, 8, generator=gen).clamp(-2.5, 2.5)
    z[1] = z[1] * 0.2 + 1.5  # the reference: another part of latent space (a lone image leaves this map loose)
    images = []
    for k in range(2):
        rgb = (z[k].reshape(4, -1).T @ weight[:4] + weight[4]).reshape(8, 8, 3)
        images.append(Image.fromarray((rgb.numpy() * 255).round().astype(np.uint8).repeat(8, 0).repeat(8, 1)))
    proj = LatentProjection.fit(z, images)
    assert torch.allclose(proj.weight, weight, atol=5e-3)
    swapped = LatentProjection.fit(z, images[::-1])  # each latent with the other's image: a worse map
    assert (swapped.weight - weight).abs().max() > 5 * (proj.weight - weight).abs().max()
    assert proj(z[1:]).size == preview_size((8, 8))
    with pytest.raises(ValueError):
        LatentProjection.fit(z, images[:1])


def test_the_budget_allows_previews_while_they_cost_at_most_their_share_of_the_time_so_far() -> None:
    now = [100.0]
    b = Budget(0.05, clock=lambda: now[0])
    assert b.allows()  # nothing spent yet
    b.spend(0.2)
    now[0] += 2.0  # 2 s of sampling: 0.1 s allowed, 0.2 s spent
    assert not b.allows() and b.skipped == 1
    now[0] += 2.0  # 4 s: 0.2 s allowed
    assert b.allows()
    b.spend(0.05)
    now[0] += 0.5  # 4.5 s: 0.225 s allowed, 0.25 s spent
    assert not b.allows() and b.skipped == 2


def test_a_slow_preview_consumer_costs_skipped_previews_not_the_edit(demo_editor: engine.Editor) -> None:
    seen: list[int] = []

    def slow(i: int, n: int, image: Image.Image) -> None:
        seen.append(i)
        time.sleep(0.25)  # a consumer as slow as a few steps

    result = demo_editor.edit(_request(), preview=slow, preview_every=1)
    assert seen[0] == 1 and len(seen) < STEPS // 2, seen  # the first, then only as the budget refills
    sampling, spent = result.stats.seconds["sampling"], result.stats.seconds["previews"]
    # Each preview starts within the budget, so previews overrun it by at most one of them.
    assert spent <= BUDGET * sampling + 0.3, (spent, sampling)
