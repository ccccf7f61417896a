"""Engine cost (issue 13): what the inversion cache holds, the batched guidance backward and the
FLOP accounting, on the tiny random model (CPU, fp32). Every memory saving is checked to leave the
edit's image bit-identical to the behaviour it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine
import engine.editor as editor_module
from diffeditor.tasks import AppearanceParams, LandmarkParams, MoveParams
from engine import budget
from engine.cost import CostTable, release_calls
from engine.errors import InvalidInput
from engine.features import decoder_features, on_grid
from engine.inversion import Inversion, invert
from engine.kv_offload import KvPrefetch, to_host
from engine.schedule import build_schedule
from tests.engine.images import box_mask, scene

RES, STEPS = 64, 10


def move_request(steps: int = STEPS) -> engine.MoveRequest:
    return engine.MoveRequest(scene(), box_mask(), MoveParams(offset=[30, 10], seed=7, steps=steps, max_resolution=RES))


def appearance_request() -> engine.AppearanceRequest:
    box = (60, 40, 120, 100)
    return engine.AppearanceRequest(
        scene(),
        box_mask(),
        scene(seed=1, box=box),
        box_mask(box=box),
        AppearanceParams(prompt="a box", reference_prompt="a red box", seed=7, steps=STEPS, max_resolution=RES),
    )


def pixels(result: engine.EditResult) -> np.ndarray:
    return np.asarray(result.image)


@pytest.fixture
def editor(random_models: engine.Models) -> engine.Editor:
    return engine.Editor(random_models)


# -- the cache entry -----------------------------------------------------------------------


def test_reference_features_are_cached_at_the_unets_resolution_and_change_nothing(
    editor: engine.Editor, random_models: engine.Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = editor.edit(move_request())
    (entry,) = editor.cache.entries()
    grid = (RES // 4, RES // 4)
    for levels in entry.features.values():
        assert all(f.shape[-2:] != grid for f in levels), "the cache holds maps resized to the grid"
    assert [f.shape[-1] for f in next(iter(entry.features.values()))] == [RES // 16, RES // 8]  # H/16, H/8 (§5.1)

    # The old behaviour: F_ref kept after the nearest resize to the grid.
    native = editor_module.Editor._reference_features

    def resized(self: engine.Editor, inv: Inversion, *args: object) -> list[torch.Tensor]:
        levels = native(self, inv, *args)
        step = next(k for k, v in inv.features.items() if v is levels)
        inv.features[step] = on_grid(levels, grid)
        return inv.features[step]

    monkeypatch.setattr(editor_module.Editor, "_reference_features", resized)
    old_editor = engine.Editor(random_models)
    old = old_editor.edit(move_request())
    assert np.array_equal(pixels(new), pixels(old)), "resizing at use must be exact"
    assert new.stats.cache_bytes < old.stats.cache_bytes


def test_kv_recorded_only_at_the_steps_that_inject_them(
    editor: engine.Editor, random_models: engine.Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = editor.edit(move_request())
    (entry,) = editor.cache.entries()
    injected = {r.i for r in build_schedule("move", STEPS, True) if r.kv}
    assert injected and injected != set(range(STEPS))
    assert all(set(steps) == injected for steps in entry.bank.values())

    def record_all(*args: object, **kwargs: object) -> Inversion:
        return invert(*args, **{**kwargs, "record_steps": None})  # type: ignore[arg-type]

    monkeypatch.setattr(editor_module, "invert", record_all)
    full_editor = engine.Editor(random_models)
    full = full_editor.edit(move_request())
    (full_entry,) = full_editor.cache.entries()
    assert all(set(steps) == set(range(STEPS)) for steps in full_entry.bank.values())
    assert np.array_equal(pixels(new), pixels(full))
    assert new.stats.cache_bytes < full.stats.cache_bytes


def test_an_edit_reports_the_bytes_its_cache_entry_holds(editor: engine.Editor) -> None:
    result = editor.edit(appearance_request())
    (entry,) = editor.cache.entries()
    tensors = list(entry.tensors())
    assert tensors and all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in tensors)
    assert result.stats.cache_bytes == entry.nbytes() == editor.cache.nbytes()
    assert entry.nbytes() == sum(t.numel() * t.element_size() for t in tensors)
    assert result.stats.to_dict()["cache_bytes"] == result.stats.cache_bytes


def test_entry_bytes_count_each_storage_once_and_whole() -> None:
    base = torch.zeros(4, 10)  # 160 bytes
    entry = Inversion(latents=[base[:1], base[1:2]], bank={"l": {0: (base[2:3], base[3:])}})
    assert entry.nbytes() == 160  # four views of one storage: it is held once, and whole
    entry.features[0] = [torch.zeros(5)]
    assert entry.nbytes() == 180


# -- one backward for both energies --------------------------------------------------------


def two_energies(
    models: engine.Models, leaves: bool
) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    c = torch.randn(1, 77, models.unet.config.cross_attention_dim)
    z = torch.randn(1, 4, 8, 8).requires_grad_(True)
    native = decoder_features(models.unet, z, 500, c)
    inputs = [f.detach().requires_grad_(True) for f in native] if leaves else None
    cur = on_grid(inputs or native, (16, 16))
    e = [1000 * sum(f[..., :8].square().mean() for f in cur), 1000 * sum(f[..., 8:].abs().mean() for f in cur)]
    return z, inputs, native, e


def direct_grads(models: engine.Models) -> list[torch.Tensor]:
    z, _, _, e = two_energies(models, leaves=False)
    return [torch.autograd.grad(x, z, retain_graph=True)[0] for x in e]


def test_batched_backward_equals_two_calls(random_models: engine.Models) -> None:
    expected = direct_grads(random_models)
    z, leaves, native, e = two_energies(random_models, leaves=True)
    ed = engine.Editor(random_models, batched_backward=True)
    ev = {"guidance_backward": 0}
    meter = CostTable().meter((RES, RES))
    got = ed._grads(e, leaves, native, z, ev, meter)
    assert ed.batched_backward, "the batched call was refused"
    assert ev["guidance_backward"] == 2 and meter.calls == {("guidance_backward", 2): 1}
    for g, want in zip(got, expected):
        assert want.abs().max() > 0
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_a_refused_batched_backward_falls_back_to_one_call_per_energy(
    random_models: engine.Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = direct_grads(random_models)
    z, leaves, native, e = two_energies(random_models, leaves=True)
    real = torch.autograd.grad

    def no_batching(*args: object, **kwargs: object) -> object:
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("NYI: no batching rule")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    ed = engine.Editor(random_models, batched_backward=True)
    meter = CostTable().meter((RES, RES))
    got = ed._grads(e, leaves, native, z, {"guidance_backward": 0}, meter)
    assert not ed.batched_backward
    assert meter.calls == {("guidance_backward", 1): 2}  # the refused call is not counted
    for g, want in zip(got, expected):
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_an_edit_with_the_batched_backward_matches_the_two_call_edit(random_models: engine.Models) -> None:
    two = engine.Editor(random_models).edit(move_request())
    batched_editor = engine.Editor(random_models, batched_backward=True)
    one = batched_editor.edit(move_request())
    diff = np.abs(pixels(one).astype(int) - pixels(two).astype(int))
    assert diff.max() <= 1, "fp32 rounding at most"
    assert one.stats.evaluations == two.stats.evaluations


# -- cost accounting -----------------------------------------------------------------------


def test_flops_of_a_call_are_measured_once_and_price_every_later_one() -> None:
    conv = torch.nn.Conv2d(4, 8, 3, padding=1).requires_grad_(False)
    x = torch.randn(1, 4, 16, 16)
    table = CostTable()
    meter = table.meter((16, 16))
    for _ in range(3):
        with meter.call("inversion", 1):
            conv(x)
    with meter.call("rollback", 1):
        F.conv2d(torch.cat([x, x]), conv.weight)  # batch 2: twice the FLOPs of one
    conv_flops = 2 * 8 * 4 * 9 * 16 * 16  # 2 · C_out · C_in · k² · H · W
    assert table.flops[("inversion", (16, 16), 1)] == conv_flops
    assert table.unit((16, 16)) == conv_flops
    assert meter.unet_equivalents() == pytest.approx(3 + 2 * 14 * 14 / (16 * 16))  # no padding: 14² outputs


def test_a_call_priced_on_a_replay_runs_itself_unmetered() -> None:
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    meter = CostTable().meter((16, 16))
    conv = torch.nn.Conv2d(4, 8, 3, padding=1)
    x = torch.randn(1, 4, 16, 16, requires_grad=True)
    y = conv(x).square().sum()
    modes: list[object] = []
    for _ in range(2):
        with meter.call("guidance_backward", 1, lambda: torch.autograd.grad(y, x, retain_graph=True)) as measured:
            modes.append(_get_current_dispatch_mode())
            torch.autograd.grad(y, x, retain_graph=True)
        assert not measured
    assert modes == [None, None]  # the edit's own backward never runs under the counter
    assert meter.table.flops[("guidance_backward", (16, 16), 1)] > 0 and meter.calls["guidance_backward", 1] == 2


def test_release_calls_for_the_default_schedule() -> None:
    """§12.1 at 50 steps: 58 CFG passes, 28 guided passes each pricing the reference and the current
    features and one backward per energy, 12 rollbacks (the 4 discarded ones included)."""
    move = release_calls(build_schedule("move", 50, True), images=1, energies=2)
    assert move == {
        ("inversion", 1): 50,
        ("sampling", 2): 58,
        ("reference_features", 1): 28,
        ("guidance_forward", 1): 28,
        ("guidance_backward", 1): 56,
        ("rollback", 1): 12,
    }
    paste = release_calls(build_schedule("paste", 50, True), images=2, energies=2, backward_batch=2)
    assert paste[("inversion", 2)] == 50 and paste[("reference_features", 2)] == 28
    assert paste[("guidance_backward", 2)] == 28
    face = release_calls(build_schedule("landmark", 50, True), images=1, energies=1)
    assert face[("guidance_backward", 1)] == 28


def test_an_edit_reports_its_cost_beside_the_releases(editor: engine.Editor) -> None:
    first = editor.edit(move_request(steps=50))
    second = editor.edit(move_request(steps=50))
    unit = editor.costs.unit((RES, RES))
    assert unit and first.stats.unet_equivalents and second.stats.unet_equivalents
    flops = {k[0]: v for k, v in editor.costs.flops.items()}
    # Hand count of the repeat: 58 CFG passes, 28 current-feature passes, 56 backward, 8 rollbacks.
    repeat = 58 * flops["sampling"] + 28 * flops["guidance_forward"] + 56 * flops["guidance_backward"]
    repeat += 8 * flops["rollback"]
    assert second.stats.unet_equivalents == pytest.approx(repeat / unit)
    first_extra = 50 * flops["inversion"] + 20 * flops["reference_features"]
    assert first.stats.unet_equivalents == pytest.approx((repeat + first_extra) / unit)
    release = repeat + 50 * flops["inversion"] + 28 * flops["reference_features"] + 4 * flops["rollback"]
    assert first.stats.release_unet_equivalents == second.stats.release_unet_equivalents
    assert first.stats.release_unet_equivalents == pytest.approx(release / unit)
    assert flops["sampling"] == 2 * flops["rollback"] or flops["sampling"] > flops["rollback"]  # CFG batch of 2
    assert flops["guidance_forward"] < flops["inversion"], "the estimator stops after up_blocks[2]"
    assert second.stats.unet_equivalents < first.stats.unet_equivalents < first.stats.release_unet_equivalents


def test_a_face_edit_prices_one_backward(editor: engine.Editor) -> None:
    req = engine.LandmarkRequest(
        scene(), LandmarkParams(points=[[50, 40, 56, 44]], seed=7, steps=STEPS, max_resolution=RES)
    )
    result = editor.edit(req)
    calls = release_calls(build_schedule("landmark", STEPS, True), images=1, energies=1)
    assert result.stats.evaluations["guidance_backward"] == calls[("guidance_backward", 1)]


# -- memory budget -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [move_request, appearance_request])
def test_the_entry_estimate_is_the_entry_an_edit_builds(editor: engine.Editor, make: object) -> None:
    request = make()  # type: ignore[operator]
    result = editor.edit(request)
    (entry,) = editor.cache.entries()
    task = "appearance" if isinstance(request, engine.AppearanceRequest) else "move"
    schedule = build_schedule(task, STEPS, True)
    images = 2 if task == "appearance" else 1
    kv = sum(1 for r in schedule if r.kv)
    guided = sum(1 for r in schedule if r.guide)
    unet = editor.models.unet
    assert budget.entry_bytes(unet, (RES, RES), images, STEPS, kv, guided, torch.float32) == entry.nbytes()
    assert result.stats.cache_bytes == entry.nbytes()


def test_a_768_cross_image_entry_fits_the_default_budget() -> None:
    """SD1.5's UNet (built on the meta device: layout only) at 768², bf16, 50 steps: the K/V are
    §12.1's 62 MB per step and image, and a paste entry (two images, K/V at the 36 injected steps,
    F_ref at the 20 guided steps) fits the editor's default 8 GiB."""
    from diffusers import UNet2DConditionModel

    from engine.sd15 import SD15_CONFIG_DIR

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG_DIR / "unet"))
    per_step = budget.entry_bytes(unet, (768, 768), 1, 0, 1, 0, torch.bfloat16) - 4 * 96 * 96 * 4
    assert per_step == pytest.approx(62e6, rel=0.02)
    schedule = build_schedule("paste", 50, True)
    kv, guided = sum(1 for r in schedule if r.kv), sum(1 for r in schedule if r.guide)
    assert (kv, guided) == (36, 20)
    paste = budget.entry_bytes(unet, (768, 768), 2, 50, kv, guided, torch.bfloat16)
    assert paste < 8 << 30
    assert 4.0e9 < paste < 5.5e9  # K/V 4.5 GB + native F_ref 0.7 GB + latents


def test_a_working_size_the_device_cannot_hold_is_refused_before_any_work(
    editor: engine.Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget, "free_bytes", lambda device: 1 << 20)  # 1 MiB free
    with pytest.raises(InvalidInput) as err:
        editor.edit(move_request())
    assert err.value.field == "max_resolution"
    assert "needs about" in err.value.message and "GB free" in err.value.message
    assert len(editor.cache) == 0, "nothing was inverted"


def test_the_cache_makes_room_for_an_edit_that_fits_without_it(
    editor: engine.Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor.edit(appearance_request())
    held = editor.cache.nbytes()
    assert held > 0 and editor._activations is not None
    schedule = build_schedule("move", STEPS, True)
    kv, guided = sum(1 for r in schedule if r.kv), sum(1 for r in schedule if r.guide)
    unet = editor.models.unet
    need = budget.MARGIN * (
        editor._activations((RES, RES))
        + budget.grid_feature_bytes(unet, (RES, RES), 1, torch.float32)
        + budget.entry_bytes(unet, (RES, RES), 1, STEPS, kv, guided, torch.float32)
    )
    # Free memory: enough for the move edit only once the appearance entry is gone.
    monkeypatch.setattr(budget, "free_bytes", lambda device: int(need) - held // 2)
    result = editor.edit(move_request())
    (entry,) = editor.cache.entries()
    assert result.stats.cache_bytes == entry.nbytes(), "the appearance entry was evicted for the move"


# -- K/V bank on the host ------------------------------------------------------------------


def test_host_copies_and_step_views_of_the_bank() -> None:
    bank = {"a": {1: (torch.ones(1, 4, 2), torch.zeros(1, 4, 2)), 3: (torch.ones(1, 4, 2) * 3, torch.zeros(1, 4, 2))}}
    host = to_host(bank)
    assert torch.equal(host["a"][3][0], bank["a"][3][0])
    assert host["a"][3][0].untyped_storage().data_ptr() != bank["a"][3][0].untyped_storage().data_ptr()
    prefetch = KvPrefetch(host, torch.device("cpu"), order=[0, 1, 2, 3])
    assert prefetch.order == [1, 3]  # only the steps the bank holds
    view = prefetch.step(1)
    assert set(view) == {"a"} and view["a"][0] is host["a"][1][0]  # step 1's K/V per layer
    assert prefetch.step(1) is view  # time travel asks for the same step again
    assert 3 in prefetch._pending, "the next step was started ahead of its use"
    assert prefetch.step(3)["a"][0] is host["a"][3][0]


def test_an_edit_with_the_bank_offloaded_is_the_same_edit(random_models: engine.Models) -> None:
    plain = engine.Editor(random_models).edit(appearance_request())
    offloaded = engine.Editor(random_models, kv_offload=True).edit(appearance_request())
    assert np.array_equal(pixels(plain), pixels(offloaded))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_offloaded_bank_leaves_the_gpu_and_the_image_unchanged(random_model_dir: object) -> None:
    models = engine.load_models(random_model_dir, device="cuda", dtype="fp32")
    on_gpu = engine.Editor(models)
    first = on_gpu.edit(move_request())
    (entry,) = on_gpu.cache.entries()
    assert all(k.is_cuda for steps in entry.bank.values() for k, _ in steps.values())
    on_gpu.clear_cache()
    offload = engine.Editor(models, kv_offload=True)
    before = torch.cuda.memory_allocated()
    second = offload.edit(move_request())
    (entry,) = offload.cache.entries()
    assert all(k.is_pinned() and not k.is_cuda for steps in entry.bank.values() for k, _ in steps.values())
    kv = sum(k.nbytes + v.nbytes for steps in entry.bank.values() for k, v in steps.values())
    growth = torch.cuda.memory_allocated() - before  # the entry's latents and F_ref, the image tokens
    assert entry.nbytes() - kv <= growth <= entry.nbytes() - kv + (1 << 20)
    assert np.array_equal(pixels(first), pixels(second))
