"""Self-attention K/V injection (§7) and the image-prompt branch and its gating (§2.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from diffeditor.tasks import DragParams
from engine.attention import AttentionControl, composite_indices
from tests.engine.images import box_mask, scene


def bank(k: torch.Tensor, v: torch.Tensor) -> AttentionControl:
    return AttentionControl(mode="inject", step=3, kv={"L": (k, v)})


def test_replace_uses_the_source_keys_for_both_cfg_halves() -> None:
    k_src, v_src = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    c = bank(k_src, v_src)
    c.kv_op = "replace"
    k, v = c.self_kv("L", torch.randn(2, 6, 4), torch.randn(2, 6, 4))
    assert torch.equal(k, k_src.expand(2, -1, -1)) and torch.equal(v, v_src.expand(2, -1, -1))


def test_concatenate_appends_the_source_tokens() -> None:
    k_src, v_src = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    k_cur, v_cur = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    c = bank(k_src, v_src)
    c.kv_op = "concat"
    k, v = c.self_kv("L", k_cur, v_cur)
    assert k.shape == (2, 12, 4)
    assert torch.equal(k[:, :6], k_cur) and torch.equal(k[1, 6:], k_src[0]) and torch.equal(v[0, 6:], v_src[0])


def test_record_stores_the_calls_keys_and_plain_leaves_keys_alone() -> None:
    c = AttentionControl()
    k, v = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    with c.record(7) as recorded:
        c.self_kv("L", k, v)
    assert torch.equal(recorded["L"][0], k)
    assert c.mode == "plain" and c.kv == {}  # the context holds nothing after it
    assert c.self_kv("L", k * 2, v)[0].equal(k * 2)
    with c.inject(3, None, None):  # inject outside the window: untouched
        assert c.self_kv("L", k * 3, v)[0].equal(k * 3)


def test_inject_resets_the_control_even_when_the_call_fails() -> None:
    c = AttentionControl()
    kv = {"L": (torch.randn(1, 6, 4), torch.randn(1, 6, 4))}
    with pytest.raises(RuntimeError), c.inject(5, kv, "replace", ip_scale=0.5):
        assert (c.mode, c.step, c.kv_op, c.ip_scale) == ("inject", 5, "replace", 0.5)
        raise RuntimeError("canceled")
    assert (c.mode, c.step, c.kv_op, c.ip_scale, c.kv) == ("plain", -1, None, 0.0, {})
    with c.inject(5, kv, "replace"), pytest.raises(AssertionError, match="already in inject"):
        with c.record():  # nested modes would leave the outer one's state behind
            pass


def test_installing_refuses_layers_that_use_what_the_processor_skips(random_models: engine.Models) -> None:
    import copy

    from engine.attention import install_processors

    unet = copy.deepcopy(random_models.unet)
    attn = unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1")
    attn.norm_q = torch.nn.LayerNorm(4)
    with pytest.raises(NotImplementedError, match="attn1 uses norm_q"):
        install_processors(unet, AttentionControl(), None)
    attn.norm_q = None
    install_processors(unet, AttentionControl(), None)
    z, text = torch.randn(1, 4, 8, 8), torch.randn(1, 77, unet.config.cross_attention_dim)
    with pytest.raises(NotImplementedError, match="attention masks"):
        unet(z, 10, encoder_hidden_states=text, encoder_attention_mask=torch.ones(1, 77))


def test_composite_takes_base_background_and_reference_object_at_each_resolution() -> None:
    h, w = 32, 64
    base_obj = torch.zeros(h, w, dtype=torch.bool)
    base_obj[8:24, 16:48] = True
    ref_obj = torch.zeros(h, w, dtype=torch.bool)
    ref_obj[0:16, 0:32] = True
    index = composite_indices(base_obj, ref_obj, (w, h), {32, 128})
    for n, (rows, cols) in {32: (4, 8), 128: (8, 16)}.items():
        bg, obj = index[n]
        small_base = base_obj[:: h // rows, :: w // cols].flatten()
        small_ref = ref_obj[:: h // rows, :: w // cols].flatten()
        assert torch.equal(bg, (~small_base).nonzero().flatten())
        assert torch.equal(obj, small_ref.nonzero().flatten())
    # the injected K/V: base rows at background tokens, reference rows at object tokens
    k_src = torch.stack([torch.full((32, 2), 1.0), torch.full((32, 2), 2.0)])
    c = bank(k_src, k_src.clone())
    c.kv_op, c.composite_index = "composite", index
    k, _ = c.self_kv("L", torch.zeros(2, 32, 2), torch.zeros(2, 32, 2))
    bg, obj = index[32]
    assert k.shape == (2, len(bg) + len(obj), 2)
    assert (k[:, : len(bg)] == 1).all() and (k[:, len(bg) :] == 2).all()


@pytest.fixture(scope="module")
def editor(random_models: engine.Models) -> engine.Editor:
    return engine.Editor(random_models)


def drag_request(**update: object) -> engine.DragRequest:
    params = DragParams(points=[[50, 40, 70, 50]], seed=3, max_resolution=64).model_copy(update=update)
    return engine.DragRequest(scene(), box_mask(), params)


def test_image_prompt_branch_runs_only_in_sampling_steps_10_to_19(editor: engine.Editor) -> None:
    calls: list[tuple[str, int]] = []
    handles = [
        k_ip.register_forward_hook(lambda *a: calls.append((editor.control.mode, editor.control.step)))
        for k_ip, _ in editor.models.ip_layers.values()
    ]
    try:
        result = editor.edit(drag_request())  # full 50-step schedule: inversion, guidance, rollbacks
    finally:
        for h in handles:
            h.remove()
    assert result.stats.evaluations["rollback"] == 8 and result.stats.evaluations["guidance_forward"] > 0
    assert {mode for mode, _ in calls} == {"inject"}  # never in inversion, rollback or guidance passes
    assert sorted({step for _, step in calls}) == list(range(10, 20))
    assert len(calls) == 10 * len(editor.models.ip_layers)  # one call per cross-attention layer per step


def test_zero_image_prompt_scale_equals_no_image_prompt(editor: engine.Editor) -> None:
    unet, c = editor.models.unet, editor.control
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    text = editor.encode_text(["a photo", ""])
    tokens = torch.randn(2, 64, 768, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with c.inject(0, None, None, ip_scale=0.0):
            with_tokens = unet(z, 500, encoder_hidden_states=torch.cat([text, tokens], 1)).sample
        with c.inject(0, None, None, ip_scale=0.5):
            scaled = unet(z, 500, encoder_hidden_states=torch.cat([text, tokens], 1)).sample
        text_only = unet(z, 500, encoder_hidden_states=text).sample
    torch.testing.assert_close(with_tokens, text_only, rtol=0, atol=0)
    assert (scaled - text_only).abs().max() > 0  # the branch contributes when on


def test_ip_scale_zero_edit_and_custom_image_prompt(editor: engine.Editor) -> None:
    base = editor.edit(drag_request(steps=20))
    encoded: list[int] = []
    hook = editor.models.image_encoder.register_forward_hook(lambda *a: encoded.append(1))
    try:
        off = editor.edit(drag_request(steps=20, ip_scale=0.0))
    finally:
        hook.remove()
    assert encoded == []  # ip_scale 0 turns the image prompt off: nothing encoded
    own = editor.edit(
        engine.DragRequest(scene(), box_mask(), base.params, image_prompt=scene(seed=5, box=(0, 0, 30, 30)))
    )
    a, b, c = (np.asarray(r.image, dtype=np.int16) for r in (base, off, own))
    assert np.abs(a - b).max() > 0 and np.abs(a - c).max() > 0
