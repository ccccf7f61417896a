"""The image-prompt encoder: Resampler maths (§2.1), strict checkpoint loading (§2.2), encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from engine.errors import ModelLoadError
from engine.image_prompt import (
    encode_image_prompt,
    image_prompt_shapes,
    ip_adapter_shapes,
    load_image_prompt,
    preprocess,
)

CLIP_HIDDEN = 32
WIDTH = 128  # two 64-wide heads, so the head split is exercised


def _random_checkpoint(unet, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    proj = {
        k: torch.randn(s, generator=g) * (0.5 if len(s) == 1 else s[-1] ** -0.5)
        for k, s in image_prompt_shapes(CLIP_HIDDEN, WIDTH, 768).items()
    }
    for k in proj:  # LayerNorm weights around 1, so a mix-up of weight and bias shows
        if k.endswith(("norm1.weight", "norm2.weight", "1.0.weight", "norm_out.weight")):
            proj[k] = 1 + proj[k]
    ip = {k: torch.randn(s, generator=g) * 0.05 for k, s in ip_adapter_shapes(unet).items()}
    return {"image_proj": proj, "ip_adapter": ip}


def _reference_resampler(sd: dict[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """§2.1 written out: queries attend over [features; queries], 64-wide heads, then feed-forward."""
    latents = sd["latents"].expand(features.shape[0], -1, -1)
    x = features @ sd["proj_in.weight"].T + sd["proj_in.bias"]
    width = latents.shape[-1]
    heads = width // 64
    s = 64**-0.25

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, N, width) -> (B, heads, N, 64)
        return t.reshape(t.shape[0], t.shape[1], heads, 64).transpose(1, 2)

    for layer in range(4):
        p = f"layers.{layer}"
        xn = F.layer_norm(x, (width,), sd[f"{p}.0.norm1.weight"], sd[f"{p}.0.norm1.bias"])
        qn = F.layer_norm(latents, (width,), sd[f"{p}.0.norm2.weight"], sd[f"{p}.0.norm2.bias"])
        q = qn @ sd[f"{p}.0.to_q.weight"].T
        k, v = (torch.cat([xn, qn], dim=1) @ sd[f"{p}.0.to_kv.weight"].T).chunk(2, dim=-1)
        weights = torch.softmax((split(q) * s) @ (split(k) * s).transpose(-1, -2), dim=-1)
        out = (weights @ split(v)).transpose(1, 2).reshape(latents.shape)
        latents = out @ sd[f"{p}.0.to_out.weight"].T + latents
        h = F.layer_norm(latents, (width,), sd[f"{p}.1.0.weight"], sd[f"{p}.1.0.bias"])
        latents = F.gelu(h @ sd[f"{p}.1.1.weight"].T) @ sd[f"{p}.1.3.weight"].T + latents
    out = latents @ sd["proj_out.weight"].T + sd["proj_out.bias"]
    return F.layer_norm(out, (out.shape[-1],), sd["norm_out.weight"], sd["norm_out.bias"])


@pytest.fixture()
def checkpoint(random_models, tmp_path: Path) -> tuple[Path, dict[str, dict[str, torch.Tensor]]]:
    ckpt = _random_checkpoint(random_models.unet)
    path = tmp_path / "ip_sd15_64.bin"
    torch.save(ckpt, path)
    return path, ckpt


def test_resampler_matches_the_written_out_maths(random_models, checkpoint) -> None:
    path, ckpt = checkpoint
    image_proj, _ = load_image_prompt(random_models.unet, path, "cpu", torch.float32, clip_hidden=CLIP_HIDDEN)
    features = torch.randn(2, 257, CLIP_HIDDEN, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = image_proj(features)
    expected = _reference_resampler(ckpt["image_proj"], features)
    assert got.shape == (2, 64, 768)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_ip_layers_follow_processor_order_with_authors_keys(random_models, checkpoint) -> None:
    path, ckpt = checkpoint
    _, ip_layers = load_image_prompt(random_models.unet, path, "cpu", torch.float32)
    processors = list(random_models.unet.attn_processors)
    attn2 = [name for name in processors if name.endswith("attn2.processor")]
    assert list(ip_layers) == attn2 and len(attn2) == 16
    for name, (to_k_ip, to_v_ip) in ip_layers.items():
        k = processors.index(name)
        assert k % 2 == 1
        assert to_k_ip.bias is None and to_v_ip.bias is None
        assert torch.equal(to_k_ip.weight, ckpt["ip_adapter"][f"{k}.to_k_ip.weight"])
        assert torch.equal(to_v_ip.weight, ckpt["ip_adapter"][f"{k}.to_v_ip.weight"])
        attn = random_models.unet.get_submodule(name.removesuffix(".processor"))
        assert to_k_ip.in_features == 768 and to_k_ip.out_features == attn.to_k.out_features
        assert not to_k_ip.weight.requires_grad


def test_truncated_checkpoint_names_file_key_and_shape(random_models, checkpoint, tmp_path: Path) -> None:
    _, ckpt = checkpoint
    del ckpt["image_proj"]["layers.2.0.to_kv.weight"]
    bad = tmp_path / "truncated.bin"
    torch.save(ckpt, bad)
    with pytest.raises(ModelLoadError) as err:
        load_image_prompt(random_models.unet, bad, "cpu", torch.float32)
    message = str(err.value)
    assert str(bad) in message and "layers.2.0.to_kv.weight" in message and f"[{2 * WIDTH}, {WIDTH}]" in message


@pytest.mark.parametrize(
    ("section", "key", "shape", "expected"),
    [
        ("image_proj", "layers.1.1.1.weight", (WIDTH, WIDTH), [4 * WIDTH, WIDTH]),
        ("ip_adapter", "5.to_k_ip.weight", (32, 768), [64, 768]),
    ],
)
def test_mismatched_shape_names_file_key_and_both_shapes(
    random_models, checkpoint, tmp_path: Path, section: str, key: str, shape: tuple[int, ...], expected: list[int]
) -> None:
    _, ckpt = checkpoint
    ckpt[section][key] = torch.zeros(shape)
    bad = tmp_path / "mismatched.bin"
    torch.save(ckpt, bad)
    with pytest.raises(ModelLoadError) as err:
        load_image_prompt(random_models.unet, bad, "cpu", torch.float32)
    message = str(err.value)
    assert str(bad) in message and key in message
    assert str(list(shape)) in message and str(expected) in message


def test_unexpected_key_and_wrong_image_encoder_width_fail(random_models, checkpoint, tmp_path: Path) -> None:
    path, ckpt = checkpoint
    with pytest.raises(ModelLoadError, match=r"proj_in\.weight.*\[128, 32\].*\[128, 48\]"):
        load_image_prompt(random_models.unet, path, "cpu", torch.float32, clip_hidden=48)
    ckpt["ip_adapter"]["33.to_k_ip.weight"] = torch.zeros(64, 768)
    bad = tmp_path / "extra.bin"
    torch.save(ckpt, bad)
    with pytest.raises(ModelLoadError, match=r"unexpected key ip_adapter\.33\.to_k_ip\.weight"):
        load_image_prompt(random_models.unet, bad, "cpu", torch.float32)


def test_missing_or_unreadable_checkpoint(random_models, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found.*diffeditor models download"):
        load_image_prompt(random_models.unet, tmp_path / "nope.bin", "cpu", torch.float32)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk.bin"):
        load_image_prompt(random_models.unet, junk, "cpu", torch.float32)


def test_safetensors_form_loads_the_same_tensors(random_models, checkpoint, tmp_path: Path) -> None:
    path, ckpt = checkpoint
    flat = {f"{section}.{k}": v.contiguous() for section, state in ckpt.items() for k, v in state.items()}
    st_path = tmp_path / "ip_sd15_64.safetensors"
    save_file(flat, str(st_path))
    proj_a, ip_a = load_image_prompt(random_models.unet, path, "cpu", torch.float32)
    proj_b, ip_b = load_image_prompt(random_models.unet, st_path, "cpu", torch.float32)
    state_a, state_b = proj_a.state_dict(), proj_b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert ip_a.keys() == ip_b.keys()
    assert all(torch.equal(ip_a[n][i].weight, ip_b[n][i].weight) for n in ip_a for i in (0, 1))


def _image(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_preprocess_squashes_to_256_then_applies_clip_processing() -> None:
    img = _image(0, (150, 100))
    pixels = preprocess([img]).numpy()[0]
    ref = np.asarray(img.resize((256, 256), Image.BICUBIC).resize((224, 224), Image.BICUBIC), dtype=np.float32) / 255
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    np.testing.assert_allclose(pixels, ((ref - mean) / std).transpose(2, 0, 1), atol=1e-5)


def test_encode_image_prompt_shapes_uncond_and_determinism(random_models) -> None:
    cond, uncond = encode_image_prompt(random_models, [_image(1)])
    assert cond.shape == uncond.shape == (1, 64, 768)
    assert cond.dtype == random_models.dtype and cond.device == random_models.device
    assert not torch.allclose(cond, uncond)
    cond2, uncond2 = encode_image_prompt(random_models, [_image(1)])
    assert torch.equal(cond, cond2) and torch.equal(uncond, uncond2)

    pair, pair_uncond = encode_image_prompt(random_models, [_image(1), _image(2)])
    assert pair.shape == (2, 64, 768)
    torch.testing.assert_close(pair[0], cond[0], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(pair[0], pair[1])
    torch.testing.assert_close(pair_uncond[1], uncond[0], rtol=1e-4, atol=1e-4)  # zeros in, same tokens out


def test_layout_at_sd15_sizes_matches_the_published_checkpoint() -> None:
    """§2.2: key widths per k and the parameter counts that make the 197 MB file (built on the meta device)."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    from engine.sd15 import SD15_CONFIG_DIR

    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG_DIR / "unet"))
    ip = ip_adapter_shapes(unet)
    widths = {int(key.split(".")[0]): shape[0] for key, shape in ip.items()}
    expected = {1: 320, 3: 320, 5: 640, 7: 640, 9: 1280, 11: 1280, 13: 1280, 15: 1280, 17: 1280}
    expected |= {19: 640, 21: 640, 23: 640, 25: 320, 27: 320, 29: 320, 31: 1280}
    assert widths == expected
    assert all(shape[1] == 768 for shape in ip.values())
    count = sum(int(np.prod(s)) for s in image_prompt_shapes(1280, 768, 768).values())
    assert count == 29_955_072
    assert sum(int(np.prod(s)) for s in ip.values()) == 19_169_280
