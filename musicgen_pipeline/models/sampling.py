"""One sampling step: guided, tempered top-k / top-p sampling of one code per codebook and row.

Rows are independent: row i draws its uniforms from its own `torch.Generator` only (inverse-CDF
sampling), so a row sampled in a batch gets the code it gets alone from the same logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from musicgen_pipeline.models.params import GenerationParams


def sample_next(
    logits: torch.Tensor,
    rows: int,
    params: GenerationParams,
    generators: list[torch.Generator],
    cfg: bool,
    *,
    active: list[bool] | None = None,
) -> torch.Tensor:
    """Codes (rows, K) from logits (rows, K, V), or (2 * rows, K, V) conditional-then-unconditional
    when `cfg` (classifier-free guidance: uncond + (cond - uncond) * guidance_scale).

    `active[r]` False: row r is past its end; it draws nothing from its generator (its code is moot).
    """
    if cfg:
        cond, uncond = logits[:rows], logits[rows:]
        scores = uncond + (cond - uncond) * params.guidance_scale
    else:
        scores = logits
    scores = scores / params.temperature
    vocab = scores.shape[-1]
    index = None
    if 0 < params.top_k < vocab:
        scores, index = scores.topk(params.top_k, dim=-1)
    elif params.top_p > 0:
        scores, index = scores.sort(dim=-1, descending=True)
    probs = F.softmax(scores, dim=-1)
    if params.top_p > 0:
        cumulative = probs.cumsum(dim=-1)
        probs = probs.masked_fill(cumulative - probs > params.top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    k = scores.shape[1]
    device = logits.device
    u = torch.stack([
        torch.rand(k, generator=g, device=device) if active is None or active[r] else torch.zeros(k, device=device)
        for r, g in enumerate(generators)
    ])  # fmt: skip
    choice = (cdf < u[..., None] * cdf[..., -1:]).sum(dim=-1).clamp_(max=scores.shape[-1] - 1)
    if index is None:
        return choice
    return index.gather(-1, choice[..., None]).squeeze(-1)
