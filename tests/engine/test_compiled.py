"""The compiled sampling UNet (engine/compiled.py, issue 13): the same edit as eager, with a bounded
number of graphs. Inductor compiles a whole UNet in minutes on two cores, so the whole edit runs under
dynamo's own "eager" backend (the graphs and guards inductor would be given, run as traced: what decides
recompiles), and inductor itself is checked on the part of the UNet this project writes, the attention
processors, in one transformer block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch._dynamo

import engine
from diffeditor.tasks import DragParams
from engine.attention import AttentionControl, install_processors
from engine.compiled import COMPILE_MODES, compile_unet
from tests.engine.images import box_mask, scene


def drag_request(steps: int = 10) -> engine.DragRequest:
    # drag: K/V concatenated from step 1 on (5 of 50), the image-prompt window (steps 2-3 of 10),
    # guidance and time travel
    params = DragParams(points=[[50, 40, 70, 50]], seed=3, steps=steps, max_resolution=64)
    return engine.DragRequest(scene(), box_mask(), params)


def test_a_compiled_edit_is_the_eager_edit_with_one_graph_per_injection_variant(random_models: engine.Models) -> None:
    eager = engine.Editor(random_models).edit(drag_request())
    torch._dynamo.reset()
    graphs = torch._dynamo.utils.counters["stats"]
    before = graphs["unique_graphs"]
    compiled = engine.Editor(random_models, compile="default", compile_backend="eager")
    calls: list[object] = []
    real = compiled._sampling_unet
    assert real is not None

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    compiled._sampling_unet = counting  # type: ignore[assignment]
    first = compiled.edit(drag_request())
    again = compiled.edit(drag_request())  # cached inversion; its step 0 (K/V untouched) is compiled now
    frames = graphs["unique_graphs"] - before
    np.testing.assert_allclose(np.asarray(first.image, dtype=float), np.asarray(eager.image, dtype=float), atol=1)
    # the repeat's first pass is compiled too (the first edit metered it eagerly): float rounding only
    np.testing.assert_allclose(np.asarray(again.image, dtype=float), np.asarray(first.image, dtype=float), atol=1)
    # every sampling pass but the metered first one went through the compiled module
    assert len(calls) == 2 * (first.stats.evaluations["sampling"] - 1) + 1
    # graphs: K/V untouched (step 0) or concatenated, the image-prompt branch on (steps 2-3) or off:
    # one per variant, not one per step (20 sampling calls)
    assert 0 < frames <= 4, f"{frames} graphs for 20 sampling calls"


def test_inductor_compiles_the_editor_processors_to_the_same_block_output(random_models: engine.Models) -> None:
    # one decoder transformer block (K/V concatenated, the image-prompt branch on): the code this
    # project writes; the rest of the UNet is diffusers' and torch's, compiled the same way
    unet = random_models.unet
    control = AttentionControl()
    install_processors(unet, control, random_models.ip_layers)
    block = unet.up_blocks[1].attentions[0]
    channels = block.proj_in.in_channels
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, 8, 8, generator=g)
    text = torch.randn(2, 77 + 64, unet.config.cross_attention_dim, generator=g)
    layer = "up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor"
    kv = {layer: (torch.randn(1, 64, channels, generator=g), torch.randn(1, 64, channels, generator=g))}
    compiled = compile_unet(block, "default")
    assert compiled is not None
    with torch.no_grad(), control.inject(7, kv, "concat", ip_scale=0.7):
        want = block(x, encoder_hidden_states=text).sample
        got = compiled(x, encoder_hidden_states=text).sample
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_compile_modes_are_the_settings_choices() -> None:
    from typing import get_args

    from service.settings import Settings

    assert get_args(Settings.model_fields["compile"].annotation) == COMPILE_MODES
    with pytest.raises(ValueError, match="expected one of off, default"):
        compile_unet(torch.nn.Linear(1, 1), "fast")  # type: ignore[arg-type]


def test_channels_last_is_the_same_edit(random_model_dir: object) -> None:
    models = engine.load_models(random_model_dir, device="cpu")  # its own copy: the layout is changed in place
    want = engine.Editor(models).edit(drag_request(steps=6))
    got = engine.Editor(models, channels_last=True).edit(drag_request(steps=6))
    assert models.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(np.asarray(got.image, dtype=float), np.asarray(want.image, dtype=float), atol=1)
