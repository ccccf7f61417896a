"""The tiny random test model: deterministic, SD1.5-shaped, loadable by plain diffusers, cached safely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine import random_model
from engine.random_model import RANDOM_CACHE_SUBDIR, ensure_random_model, write_random_model

WEIGHT_FILES = [
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
    "image_encoder/model.safetensors",
]


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for rel in WEIGHT_FILES:
        out.update({f"{rel}:{k}": v for k, v in load_file(folder / rel).items()})
    ckpt = torch.load(folder / "image_prompt" / "ip_sd15_64.bin", weights_only=True)
    for section, state in ckpt.items():
        out.update({f"{section}:{k}": v for k, v in state.items()})
    return out


def test_same_seed_gives_identical_tensors_and_another_seed_does_not(random_model_dir: Path, tmp_path: Path) -> None:
    again = _tensors(write_random_model(tmp_path / "again", seed=0))
    first = _tensors(random_model_dir)
    assert again.keys() == first.keys()
    for key, value in first.items():
        assert torch.equal(value, again[key]), key
    # A different seed changes the random weights (norm weights and biases stay 1 and 0).
    other = load_file(write_random_model(tmp_path / "other", seed=1) / WEIGHT_FILES[0])
    weight = "conv_in.weight"
    assert not torch.equal(other[weight], load_file(random_model_dir / WEIGHT_FILES[0])[weight])


def test_folder_layout_and_readme(random_model_dir: Path) -> None:
    for rel in [*WEIGHT_FILES, "model_index.json", "tokenizer/vocab.json", "tokenizer/merges.txt"]:
        assert (random_model_dir / rel).is_file(), rel
    assert (random_model_dir / "scheduler" / "scheduler_config.json").is_file()
    assert "RANDOM WEIGHTS" in (random_model_dir / "README.txt").read_text()
    assert json.loads((random_model_dir / "demo_model.json").read_text())["random_weights"] is True


def test_plain_diffusers_pipeline_loads_it(random_model_dir: Path) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(random_model_dir, safety_checker=None, requires_safety_checker=False)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.unet.config.cross_attention_dim == 768
    assert pipe.vae_scale_factor == 8


def test_unet_has_sd15_block_structure(random_models) -> None:
    unet = random_models.unet
    processors = list(unet.attn_processors)
    assert len(processors) == 32
    cross = [k for k, name in enumerate(processors) if name.endswith("attn2.processor")]
    assert cross == list(range(1, 32, 2))  # the authors' keys k = 1, 3, ..., 31
    assert [type(b).__name__ for b in unet.down_blocks] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert [type(b).__name__ for b in unet.up_blocks] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert all(hasattr(b, "attentions") for b in unet.up_blocks[1:])
    assert not hasattr(unet.up_blocks[0], "attentions")
    assert unet.config.cross_attention_dim == 768 and unet.config.in_channels == unet.config.out_channels == 4


def test_unet_forward_at_64px(random_models) -> None:
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = random_models.unet(latents, 981, encoder_hidden_states=context).sample
    assert out.shape == (1, 4, 8, 8)
    assert torch.isfinite(out).all()


def test_vae_downsamples_by_eight(random_models) -> None:
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        latent = random_models.vae.encode(image).latent_dist.mean
        decoded = random_models.vae.decode(latent).sample
    assert latent.shape == (1, 4, 8, 8) and decoded.shape == (1, 3, 64, 64)
    assert random_models.vae.config.scaling_factor == pytest.approx(0.18215)


def test_tokenizer_pads_to_77_with_clip_conventions(random_models) -> None:
    tok = random_models.tokenizer
    ids = tok("a photo of a cat", padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
    assert tok.model_max_length == 77 and len(ids) == 77
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens[:3] == ["<|startoftext|>", "a</w>", "p"]
    assert "cat</w>" in tokens  # a merge applied
    end = tokens.index("<|endoftext|>")
    assert all(t == "<|endoftext|>" for t in tokens[end:])  # padded with <|endoftext|>
    assert max(ids) < random_models.text_encoder.config.vocab_size
    with torch.no_grad():
        hidden = random_models.text_encoder(torch.tensor([ids]))[0]
    assert hidden.shape == (1, 77, 768)


def test_scheduler_has_sd15_numbers(random_models) -> None:
    sched = random_models.scheduler
    assert type(sched).__name__ == "DDIMScheduler"
    cfg = sched.config
    assert (cfg.beta_schedule, cfg.beta_start, cfg.beta_end) == ("scaled_linear", 0.00085, 0.012)
    assert (cfg.num_train_timesteps, cfg.set_alpha_to_one, cfg.steps_offset, cfg.clip_sample) == (1000, False, 1, False)
    sched.set_timesteps(50)
    assert sched.timesteps[0] == 981 and sched.timesteps[-1] == 1
    assert float(sched.final_alpha_cumprod) == pytest.approx(0.99915, abs=1e-5)


def test_image_encoder_gives_257_tokens_and_a_penultimate_layer(random_models) -> None:
    with torch.no_grad():
        out = random_models.image_encoder(torch.zeros(1, 3, 224, 224), output_hidden_states=True)
    assert len(out.hidden_states) >= 3  # embeddings + at least 2 layers
    assert out.hidden_states[-2].shape[:2] == (1, 257)


def test_ensure_random_model_builds_once_into_the_cache(
    random_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def copy_demo(path: Path, seed: int = 0) -> Path:  # the real writer is covered above; copying is quicker
        calls.append(path)
        shutil.copytree(random_model_dir, path, dirs_exist_ok=True)
        return path

    monkeypatch.setenv("DIFFEDITOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(random_model, "write_random_model", copy_demo)
    first = ensure_random_model()
    assert first == tmp_path / RANDOM_CACHE_SUBDIR
    assert (first / "demo_model.json").is_file()
    assert calls and calls[0].parent == tmp_path and calls[0] != first  # written aside, then renamed
    assert ensure_random_model() == first and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [RANDOM_CACHE_SUBDIR]  # no temp folder left behind
