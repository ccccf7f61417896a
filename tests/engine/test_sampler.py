"""The DDIM step, regional SDE and rollback (§6, §9) against diffusers and hand values."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from engine.sampler import AlphaTable, ddim_invert_step, ddim_step, sample
from engine.schedule import StepPlan, build_schedule

SD15 = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    steps_offset=1,
    clip_sample=False,
    timestep_spacing="leading",
)


@pytest.fixture(scope="module")
def scheduler() -> DDIMScheduler:
    s = DDIMScheduler(**SD15)
    s.set_timesteps(50)
    return s


@pytest.fixture(scope="module")
def alphas(scheduler: DDIMScheduler) -> AlphaTable:
    return AlphaTable(scheduler.alphas_cumprod.double())


def test_alpha_sanity_values(alphas: AlphaTable) -> None:
    # §6 sanity values (float64 schedule).
    assert alphas(981) == pytest.approx(0.00578, abs=5e-6)
    assert alphas(761) == pytest.approx(0.05136, abs=5e-6)
    assert alphas(601) == pytest.approx(0.15982, abs=5e-6)
    assert alphas(1) == pytest.approx(0.9983, abs=5e-5)
    assert alphas(-19) == pytest.approx(0.99915, abs=5e-6)  # ᾱ(t<0) := ᾱ(0), §14.12
    assert alphas.variance(761, 741) ** 0.5 == pytest.approx(0.384, abs=1e-3)  # σ(η=1) at i = 11
    assert alphas.variance(601, 581) ** 0.5 == pytest.approx(0.330, abs=1e-3)  # at i = 19


@pytest.mark.parametrize("t", [981, 761, 401, 21, 1])
def test_deterministic_step_equals_diffusers(scheduler: DDIMScheduler, alphas: AlphaTable, t: int) -> None:
    g = torch.Generator().manual_seed(t)
    z = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    expected = scheduler.step(eps, t, z, eta=0.0).prev_sample
    ours = ddim_step(z, eps, eps, t, t - 20, alphas)
    # diffusers keeps ᾱ in float32, hence float32-level agreement
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_guidance_enters_x0_only(alphas: AlphaTable) -> None:
    z, eps, g = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2), torch.full((1, 4, 2, 2), 0.5)
    a_t, a_p = alphas(501), alphas(481)
    out = ddim_step(z, eps, eps + g, 501, 481, alphas)
    x0 = (1 - (1 - a_t) ** 0.5 * 0.5) / a_t**0.5  # ε̃ in x̂0 ...
    torch.testing.assert_close(out, torch.full_like(z, a_p**0.5 * x0))  # ... unguided ε (=0) in the direction


def test_regional_sde_noise_only_inside_mask_with_eta_sigma_variance(alphas: AlphaTable) -> None:
    t, tp, eta = 761, 741, 0.4
    shape = (1, 4, 128, 128)
    z = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = torch.zeros(shape, dtype=torch.float64)  # no direction term: what remains is √ᾱ_p·x̂0 + noise
    mask = torch.zeros(1, 1, 128, 128, dtype=torch.float64)
    mask[..., :, :64] = 1
    out = ddim_step(z, eps, eps, t, tp, alphas, eta, 0.0, mask, torch.Generator().manual_seed(1))
    residual = out - alphas(tp) ** 0.5 * z / alphas(t) ** 0.5
    outside = residual[..., 64:]
    inside = residual[..., :64]
    assert outside.abs().max() < 1e-12  # exactly the deterministic update, up to rounding
    sigma = eta * alphas.variance(t, tp) ** 0.5
    assert inside.var().item() == pytest.approx(sigma**2, rel=0.03)
    assert inside.mean().item() == pytest.approx(0.0, abs=3 * sigma / inside.numel() ** 0.5)


def test_no_random_draw_when_eta_zero(alphas: AlphaTable) -> None:
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    ddim_step(
        torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2), 761, 741, alphas, 0, 0, None, gen
    )
    assert torch.equal(gen.get_state(), state)


def test_rollback_inverts_a_deterministic_step(alphas: AlphaTable) -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    z_prev = ddim_step(z, eps, eps, 541, 521, alphas)
    torch.testing.assert_close(ddim_invert_step(z_prev, eps, 521, 541, alphas), z)


def test_sample_loop_runs_the_schedule(alphas: AlphaTable) -> None:
    calls: dict[str, list[int]] = {"denoise": [], "guidance": [], "rollback": []}

    def denoise(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
        calls["denoise"].append(row.i)
        return torch.zeros_like(z)

    def guidance(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
        calls["guidance"].append(row.i)
        return torch.zeros_like(z)

    def rollback(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
        calls["rollback"].append(row.i)
        return torch.zeros_like(z)

    schedule = build_schedule("drag", 50, guidance=True)
    sample(torch.zeros(1, 4, 2, 2), schedule, alphas, denoise, guidance, rollback, 0.4, 0.0, None, None)
    assert len(calls["denoise"]) == 58
    assert len(calls["guidance"]) == 28
    assert calls["rollback"] == [22, 22, 24, 24, 26, 26, 28, 28]
