"""`diffeditor train-demo` at toy sizes: every stage runs, a resumed run equals an uninterrupted
one, and the export loads through the same loaders as real weights, image prompt included."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import CLIPTokenizer

from diffeditor import world
from engine import train_demo
from engine.models import load_models
from engine.train_demo import TrainConfig

TINY = TrainConfig(
    vae_steps=2,
    vae_batch=2,
    scenes=6,
    unet_steps=2,
    unet_batch=2,
    decoder_steps=2,
    warmup=1,
    checkpoint_every=1,
)


class _Stop(Exception):
    pass


def _interrupt_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_demo._save

    def save_then_stop(path: Path, state: dict) -> None:
        real(path, state)
        raise _Stop

    monkeypatch.setattr(train_demo, "_save", save_then_stop)


def test_vae_resumed_from_a_checkpoint_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in ("a", "b"):
        (tmp_path / d / "checkpoints").mkdir(parents=True)
    whole = train_demo.train_vae(TINY, tmp_path / "a", torch.device("cpu"))
    with monkeypatch.context() as m:
        _interrupt_after_first_checkpoint(m)
        with pytest.raises(_Stop):
            train_demo.train_vae(TINY, tmp_path / "b", torch.device("cpu"))
    assert torch.load(tmp_path / "b" / "checkpoints" / "vae.pt", weights_only=False)["step"] == 1
    resumed = train_demo.train_vae(TINY, tmp_path / "b", torch.device("cpu"))
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def test_the_whole_pipeline_exports_a_model_set_the_engine_loads(tmp_path: Path) -> None:
    model = train_demo.train(TINY, tmp_path / "run")
    marker = json.loads((model / "demo_model.json").read_text())
    assert marker == {
        "name": "diffeditor-shapes",
        "version": 1,
        "seed": 0,
        "random_weights": False,
        "resolution": TINY.image_size,  # the default working size of the model it exports
    }
    card = (model / "README.md").read_text()
    assert "diffeditor train-demo" in card and "unet/diffusion_pytorch_model.safetensors" in card
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"vae", "latents", "unet", "decoder"}

    m = load_models(model, device="cpu")
    assert m.is_demo and not m.random_weights and m.model_id == "shapes-v1"
    assert m.default_resolution() == TINY.image_size
    assert m.vae.config.scaling_factor == pytest.approx(
        log[[r["stage"] for r in log].index("latents")]["scaling_factor"]
    )
    assert m.image_encoder is not None and m.image_proj is not None and m.ip_layers is not None
    # Every caption word is one token of the learned BPE vocabulary.
    tok = CLIPTokenizer.from_pretrained(model / "tokenizer")
    assert all(len(tok.tokenize(word)) == 1 for word in world.caption_words())


def test_exported_image_prompt_matches_the_trained_modules(tmp_path: Path) -> None:
    """The inverse of diffeditor's IP-Adapter-Plus conversion: what the engine loads computes what
    was trained (fp16 export, so to fp16 tolerance)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(**train_demo.UNET_CONFIG)
    parts = train_demo.ImagePromptParts(unet, seed=3).eval()
    with torch.no_grad():
        for p in parts.resampler.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # not the init: norms and biases differ from 1 and 0
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = parts.tokens(pixels)
    cfg = replace(TINY, decoder_steps=0)
    model = train_demo.export(
        cfg,
        tmp_path,
        train_demo.build_vae(0),
        {"unet": unet, "text": train_demo.build_text_encoder(0), "ip": parts},
        scaling=1.0,
        summary={},
    )
    m = load_models(model, device="cpu")
    with torch.no_grad():
        got = m.image_proj(m.image_encoder(pixels, output_hidden_states=True).hidden_states[-2])
    assert got.shape == (2, 64, 768)
    assert torch.allclose(got, want, atol=5e-2, rtol=5e-2)
    for name, (k, v) in parts.layers().items():
        k_loaded, v_loaded = m.ip_layers[name]
        assert torch.allclose(k_loaded.weight, k.weight.half().float()) and torch.allclose(
            v_loaded.weight, v.weight.half().float()
        )
