"""load_models: specs, dtypes, identities, and the errors that name the file and the fix."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from safetensors.torch import save_file

from engine import random_model
from engine.download import download_models
from engine.errors import ModelLoadError
from engine.models import load_models

CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once


def _linked_copy(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """A model folder made of symlinks to `src`'s parts (cheap), minus `skip`."""
    dst.mkdir()
    for entry in src.iterdir():
        if entry.name not in skip:
            (dst / entry.name).symlink_to(entry)
    return dst


def test_demo_folder_loads_frozen_on_cpu(random_model_dir: Path) -> None:
    m = load_models(random_model_dir, device="cpu")  # a fresh copy: editors swap the shared one's processors
    assert m.is_demo and m.model_id == "tiny-random-v1"
    assert m.device == torch.device("cpu") and m.dtype == torch.float32
    for module in (m.unet, m.vae, m.text_encoder, m.image_encoder, m.image_proj):
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
        assert all(p.dtype == torch.float32 for p in module.parameters())
    assert all(isinstance(p, AttnProcessor2_0) for p in m.unet.attn_processors.values())
    assert m.ip_layers is not None and len(m.ip_layers) == 16


def test_tiny_random_spec_uses_the_cache(
    random_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFEDITOR_CACHE_DIR", str(tmp_path))
    cached = tmp_path / random_model.RANDOM_CACHE_SUBDIR
    shutil.copytree(random_model_dir, cached)  # already built: load_models must not rebuild it
    monkeypatch.setattr(random_model, "write_random_model", lambda *a, **k: pytest.fail("rebuilt the random model"))
    m = load_models("tiny-random", device="cpu", require_image_prompt=False)
    assert m.is_demo and m.random_weights and m.model_id == "tiny-random-v1"


def test_demo_spec_is_the_shipped_shapes_model() -> None:
    from engine.shapes_model import SHAPES_DIR

    m = load_models("demo", device="cpu")
    assert m.is_demo and not m.random_weights and m.model_id == "shapes-v1"
    assert m.trained_resolution == 128 and m.default_resolution() == 128  # its training size, from the marker
    assert m.image_encoder is not None and m.ip_layers is not None
    assert m.vae.config.scaling_factor != pytest.approx(0.18215)  # set from the shapes data
    assert (SHAPES_DIR / "README.md").is_file()


def test_half_precision_on_cpu_falls_back_to_fp32(random_model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.models"):
        m = load_models(random_model_dir, device="cpu", dtype="fp16", require_image_prompt=False)
    assert m.dtype == torch.float32 and next(m.unet.parameters()).dtype == torch.float32
    assert "fp32" in caplog.text
    with pytest.raises(ModelLoadError, match="unknown dtype 'fp8'"):
        load_models(random_model_dir, device="cpu", dtype="fp8")


def test_real_weights_folder_identity_is_stable_and_tracks_file_changes(random_model_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(random_model_dir, tmp_path / "sd15", skip=("demo_model.json",))
    (folder / "model_index.json").unlink()  # a real file, so the test can touch it
    shutil.copy(random_model_dir / "model_index.json", folder / "model_index.json")
    first = load_models(folder, device="cpu", require_image_prompt=False)
    assert not first.is_demo and first.model_id.startswith(str(folder.resolve()) + "#")
    assert load_models(folder, device="cpu", require_image_prompt=False).model_id == first.model_id
    later = time.time_ns() + 5_000_000_000
    os.utime(folder / "model_index.json", ns=(later, later))
    assert load_models(folder, device="cpu", require_image_prompt=False).model_id != first.model_id


def _replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_fingerprint_tracks_contents_replaced_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    from engine.models import _fingerprint

    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"\x00" * 4096)
    before = _fingerprint([tmp_path], root=tmp_path)
    assert _fingerprint([tmp_path], root=tmp_path) == before
    _replace_keeping_size_and_mtime(weights, b"\x00" * 2048 + b"\x01" + b"\x00" * 2047)
    assert _fingerprint([tmp_path], root=tmp_path) != before


def test_real_weights_replaced_in_place_get_a_new_identity(random_model_dir: Path, tmp_path: Path) -> None:
    # The inversion cache is keyed by model_id: a stale id would reuse inversions of the old weights.
    folder = _linked_copy(random_model_dir, tmp_path / "sd15", skip=("demo_model.json",))
    notes = folder / "weights-notes.txt"
    notes.write_text("release A")
    first = load_models(folder, device="cpu", require_image_prompt=False).model_id
    _replace_keeping_size_and_mtime(notes, b"release B")
    assert load_models(folder, device="cpu", require_image_prompt=False).model_id != first


def test_missing_folder_names_it_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-models"
    with pytest.raises(ModelLoadError) as err:
        load_models(missing, device="cpu")
    message = str(err.value)
    assert str(missing) in message
    assert "diffeditor models download" in message and "diffeditor demo-model" in message


def test_incomplete_folder_names_missing_parts(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelLoadError, match=r"missing vae/, text_encoder/, tokenizer/, scheduler/.*demo-model"):
        load_models(tmp_path, device="cpu")


def test_sd2_like_folder_is_refused(random_model_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(random_model_dir, tmp_path / "sd2", skip=("unet",))
    (folder / "unet").mkdir()
    config = json.loads((random_model_dir / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    with pytest.raises(ModelLoadError) as err:
        load_models(folder, device="cpu")
    message = str(err.value)
    assert str(folder / "unet" / "config.json") in message
    assert "1024" in message and "SD2" in message and "Stable Diffusion 1.5" in message


def test_image_prompt_parts_required_unless_waived(random_model_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(random_model_dir, tmp_path / "no-ip", skip=("image_prompt",))
    with pytest.raises(ModelLoadError, match=r"ip_sd15_64\.bin is missing.*image_prompt="):
        load_models(folder, device="cpu")
    m = load_models(folder, device="cpu", require_image_prompt=False)
    assert m.image_encoder is None and m.image_proj is None and m.ip_layers is None
    # An explicit checkpoint path completes the set again.
    m = load_models(folder, device="cpu", image_prompt=random_model_dir / "image_prompt" / "ip_sd15_64.bin")
    assert m.image_proj is not None and m.ip_layers is not None


def test_hub_id_offline_and_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # so "owner/name" is not a local folder either
    with pytest.raises(ModelLoadError) as err:
        load_models("someone/sd15-not-cached", device="cpu")
    message = str(err.value)
    assert "'someone/sd15-not-cached'" in message and "HF_HUB_OFFLINE" in message
    assert "diffeditor models download" in message


def test_hub_id_with_unreachable_hub_fails_without_waiting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="unreachable"):
        load_models("someone/sd15-not-cached", device="cpu")


def _one_key_checkpoint(path: Path, cross_dim: int) -> Path:
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    save_file({key: torch.zeros(8, cross_dim)}, str(path))
    return path


def test_single_file_sd2_is_refused_from_its_header(tmp_path: Path) -> None:
    path = _one_key_checkpoint(tmp_path / "sd21.safetensors", 1024)
    with pytest.raises(ModelLoadError, match=r"sd21\.safetensors.*1024 \(SD2\.x\).*Stable Diffusion 1\.5"):
        load_models(path, device="cpu")


def test_single_file_without_a_tokenizer_offline_says_how_to_fix(tmp_path: Path) -> None:
    path = _one_key_checkpoint(tmp_path / "sd15.safetensors", 768)
    with pytest.raises(ModelLoadError) as err:
        load_models(path, device="cpu", require_image_prompt=False)
    message = str(err.value)
    assert str(path) in message and "tokenizer" in message and "DIFFEDITOR_TOKENIZER" in message


def test_single_file_needs_image_prompt_paths_unless_waived(tmp_path: Path) -> None:
    path = _one_key_checkpoint(tmp_path / "sd15.safetensors", 768)
    with pytest.raises(ModelLoadError, match=r"no image encoder or image-prompt checkpoint was given.*image_prompt="):
        load_models(path, device="cpu")


def test_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.txt"
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"weights\.txt is a file but not a checkpoint"):
        load_models(path, device="cpu")


def test_download_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dest = tmp_path / "models"
    with pytest.raises(ModelLoadError) as err:
        download_models(dest)
    message = str(err.value)
    assert str(dest) in message and "HF_HUB_OFFLINE" in message and "diffeditor demo-model" in message
    assert not dest.exists()


def test_download_with_unreachable_hub_fails_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT_ENDPOINT)
    with pytest.raises(ModelLoadError, match=r"127\.0\.0\.1:9 is unreachable"):
        download_models(tmp_path / "models")


def test_single_file_that_is_incomplete_is_wrapped(random_model_dir: Path, tmp_path: Path) -> None:
    # With a tokenizer given, loading gets as far as diffusers' converter, which finds no text encoder.
    path = _one_key_checkpoint(tmp_path / "partial.safetensors", 768)
    with pytest.raises(ModelLoadError, match=r"partial\.safetensors: cannot load it as a Stable Diffusion 1\.5"):
        load_models(path, device="cpu", tokenizer=random_model_dir / "tokenizer", require_image_prompt=False)


@pytest.mark.slow
def test_a_single_file_in_the_original_sd15_layout_loads_with_every_weight(
    random_model_dir: Path, tmp_path: Path
) -> None:
    """SD1.5's architecture with random weights, written as one original-layout (CompVis/LDM)
    checkpoint and loaded back by `load_models` exactly as a downloaded file would be: every
    UNet, VAE and text-encoder tensor comes back equal (about 1 min and 7 GB on 2 CPU cores)."""
    from safetensors import safe_open

    from tests.engine.ldm_checkpoint import sd15_random_parts, to_ldm

    parts = sd15_random_parts()
    checkpoint, names = to_ldm(parts["unet"], parts["vae"], parts["text_encoder"])
    path = tmp_path / "sd15-random.safetensors"
    save_file(checkpoint, str(path))
    del checkpoint, parts

    models = load_models(path, device="cpu", tokenizer=random_model_dir / "tokenizer", require_image_prompt=False)
    assert not models.is_demo and models.model_id.startswith(f"file:{path.resolve()}#")
    assert list(models.unet.config.block_out_channels) == [320, 640, 1280, 1280]  # SD1.5's, not the tiny model's
    compared = 0
    with safe_open(str(path), framework="pt") as file:
        for component in ("unet", "vae", "text_encoder"):
            for key, loaded in getattr(models, component).state_dict().items():
                written = file.get_tensor(names[f"{component}.{key}"]).float().reshape(loaded.shape)
                assert torch.equal(loaded, written), f"{component}.{key}"
                compared += 1
        assert compared == len(names) == len(list(file.keys()))


def test_folder_with_an_empty_tokenizer_is_refused(random_model_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(random_model_dir, tmp_path / "no-vocab", skip=("tokenizer",))
    (folder / "tokenizer").mkdir()
    with pytest.raises(ModelLoadError, match=r"no-vocab/tokenizer: no CLIP vocabulary"):
        load_models(folder, device="cpu", require_image_prompt=False)
