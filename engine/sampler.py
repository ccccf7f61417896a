"""The DDIM step with regional SDE (§6), the exact DDIM rollback (§9) and the sampling loop (§11.2).

Written in the manner of k-diffusion's samplers: `sample()` is one short loop over the schedule
rows, with the model, the guidance and the schedule passed in. All update formulas are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from engine.schedule import StepPlan


@dataclass(frozen=True)
class AlphaTable:
    """ᾱ(t) lookups, with ᾱ(t < 0) := ᾱ(0) (SD1.5's set_alpha_to_one=False, §1 and §14.12)."""

    alphas_cumprod: torch.Tensor  # float64, [train_steps]

    def __call__(self, t: int) -> float:
        return float(self.alphas_cumprod[max(t, 0)])

    def variance(self, t: int, t_prev: int) -> float:
        """σ² = (1−ᾱ_p)/(1−ᾱ_t) · (1 − ᾱ_t/ᾱ_p): DDIMScheduler._get_variance (§6.4)."""
        a_t, a_p = self(t), self(t_prev)
        return (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)


def predict_x0(z: torch.Tensor, eps: torch.Tensor, alpha: float) -> torch.Tensor:
    return (z - (1 - alpha) ** 0.5 * eps) / alpha**0.5


def ddim_step(
    z: torch.Tensor,
    eps: torch.Tensor,
    eps_guided: torch.Tensor,
    t: int,
    t_prev: int,
    alphas: AlphaTable,
    eta_in: float = 0.0,
    eta_out: float = 0.0,
    sde_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One DDIM step z_t → z_{t_prev} with regional SDE (§6).

    The guided ε̃ enters x̂0 only; the direction term uses the unguided ε_cfg (the release's
    behaviour, §5.3 and §14.1). Inside `sde_mask` the noise level is η_in·σ, outside η_out·σ;
    one normal draw serves both, and none is drawn when both η are 0.
    """
    a_t, a_p = alphas(t), alphas(t_prev)
    x0 = predict_x0(z, eps_guided, a_t)
    if eta_in == 0 and eta_out == 0:
        return a_p**0.5 * x0 + (1 - a_p) ** 0.5 * eps
    sigma = alphas.variance(t, t_prev) ** 0.5
    s_in, s_out = eta_in * sigma, eta_out * sigma
    noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=torch.float32).to(z.dtype)
    z_in = a_p**0.5 * x0 + (1 - a_p - s_in**2) ** 0.5 * eps + s_in * noise
    z_out = a_p**0.5 * x0 + (1 - a_p - s_out**2) ** 0.5 * eps + s_out * noise
    if sde_mask is None:
        return z_in
    return sde_mask * z_in + (1 - sde_mask) * z_out


def ddim_invert_step(z: torch.Tensor, eps: torch.Tensor, t_from: int, t_to: int, alphas: AlphaTable) -> torch.Tensor:
    """Deterministic DDIM inversion z_{t_from} → z_{t_to} (t_to > t_from), §3.2 and §9."""
    x0 = predict_x0(z, eps, alphas(t_from))
    a_to = alphas(t_to)
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


# The loop's collaborators, passed in (k-diffusion style):
#   denoise(z, row) -> ε_cfg            CFG noise prediction with the row's KV / image-prompt state
#   guidance(z, row) -> g               regional gradient guidance, added to ε for x̂0 (§5.3)
#   rollback_eps(z, row) -> ε′          conditional, plain-attention ε at t_prev (§9)
#   on_step(i, x0) -> None              progress report, cancellation check, preview of the step's x̂0
Denoise = Callable[[torch.Tensor, StepPlan], torch.Tensor]
Guidance = Callable[[torch.Tensor, StepPlan], torch.Tensor]
OnStep = Callable[[int, torch.Tensor], None]


@torch.no_grad()
def sample(
    z: torch.Tensor,
    schedule: list[StepPlan],
    alphas: AlphaTable,
    denoise: Denoise,
    guidance: Guidance,
    rollback_eps: Denoise,
    eta_in: float,
    eta_out: float,
    sde_mask: torch.Tensor | None,
    generator: torch.Generator | None,
    on_step: OnStep = lambda i, x0: None,
) -> torch.Tensor:
    """DiffEditor's sampler (§11.2): guided DDIM with regional SDE and time travel."""
    for row in schedule:
        z_t = z
        for p in range(row.passes):
            eps = denoise(z_t, row)
            eps_guided = eps + guidance(z_t, row) if row.guide else eps
            eta = (eta_in, eta_out) if row.sde else (0.0, 0.0)
            z = ddim_step(z_t, eps, eps_guided, row.t, row.t_prev, alphas, *eta, sde_mask, generator)
            if p < row.passes - 1:  # time travel: exact rollback; the third one is skipped (§9)
                z_t = ddim_invert_step(z, rollback_eps(z, row), row.t_prev, row.t, alphas)
        on_step(row.i, predict_x0(z_t, eps_guided, alphas(row.t)))  # the x̂0 the last pass stepped from
    return z
