"""Incremental MusicGen decoding over the weights of a Hugging Face MusicGen decoder.

Why our own step instead of `GenerationMixin.generate`: each decoding step reads every decoder weight
once, so the step time is bound by memory bandwidth; the stock loop adds per-step work on top of that
(a dynamic KV cache that grows by concatenation, mask building, logits processors over the full
vocabulary, delay-pattern bookkeeping). Here:

- q/k/v projections and the per-codebook LM heads are fused into single matrices (the HF modules keep
  working: their parameters become views into the fused tensors, so no weight is stored twice);
- the self-attention KV cache is preallocated once (static) and written in place;
- cross-attention keys/values of the text condition are computed once per generation and reused by
  every window of a long scene;
- classifier-free guidance runs conditional and unconditional rows as one batch.

`static_shapes=True` (used on CUDA) attends over the whole preallocated cache with a position mask, so
every step has identical shapes and can be compiled / captured as a CUDA graph (`torch.compile`,
mode "reduce-overhead"). The dynamic path (CPU default) attends over the filled part only.

The math equals `MusicgenForCausalLM.forward` (tested against it to float tolerance), for MusicGen
(cross-attention to the text) and MusicGen Melody (condition prepended to the sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROW_BLOCK = 4


def _pad_rows(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad the batch to a multiple of ROW_BLOCK rows before the projections.

    BLAS picks its kernel by the number of rows: on CPU (MKL, AVX2) a row's result is bit-identical
    for any batch of >= 4 rows, but 1-3 rows take another path whose sums round differently. Padding
    makes every row of every batch go through the same kernel, so a prompt decoded in a batch gets
    exactly the logits (and therefore the codes) it gets alone. The cost is nil: the step reads the
    weights once whatever the row count. Attention runs on the real rows only.
    """
    pad = -x.shape[0] % ROW_BLOCK
    return F.pad(x, (0, 0, 0, 0, 0, pad)) if pad else x


@dataclass
class _Layer:
    ln1: nn.LayerNorm
    qkv: torch.Tensor  # (3D, D)
    out: torch.Tensor  # (D, D)
    ln2: nn.LayerNorm | None
    cross_q: torch.Tensor | None
    cross_k: torch.Tensor | None
    cross_v: torch.Tensor | None
    cross_out: torch.Tensor | None
    ln3: nn.LayerNorm
    fc1: torch.Tensor
    fc2: torch.Tensor


def _fuse(linears: list[nn.Linear]) -> torch.Tensor:
    """Concatenate the weights of bias-free linears and make each module's weight a view into the result."""
    if any(lin.bias is not None for lin in linears):
        raise ValueError("fusing expects bias-free projections (as in every released MusicGen)")
    fused = torch.cat([lin.weight.detach() for lin in linears], dim=0).contiguous()
    offset = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight = nn.Parameter(fused[offset : offset + rows], requires_grad=False)
        offset += rows
    return fused


class FastDecoder:
    """Own KV-cached forward over a `MusicgenForCausalLM` / `MusicgenMelodyForCausalLM`.

    Usage per generation: `set_cross(states, mask)` (MusicGen) or nothing (Melody, whose condition is
    fed as prefix embeddings through `forward(embeds=...)`), `allocate(rows, length)`, then `forward`
    calls with increasing `start` positions. Returns logits (rows, codebooks, vocab) in float32.
    """

    def __init__(self, lm: nn.Module, *, static_shapes: bool = False) -> None:
        self.lm = lm
        decoder = lm.model.decoder
        config = lm.config
        self.num_codebooks = int(config.num_codebooks)
        self.vocab = int(config.vocab_size)
        self.hidden = int(config.hidden_size)
        self.heads = int(config.num_attention_heads)
        self.head_dim = self.hidden // self.heads
        if getattr(config, "scale_embedding", False):
            raise ValueError("scale_embedding=True MusicGen decoders are not supported")
        self.positions = decoder.embed_positions
        self.final_ln = decoder.layer_norm
        self.embed = torch.stack([e.weight.detach() for e in decoder.embed_tokens])  # (K, V+1, D)
        self.codebook_index = torch.arange(self.num_codebooks, device=self.embed.device)
        self.heads_weight = _fuse(list(lm.lm_heads))  # (K*V, D)
        self.layers: list[_Layer] = []
        for layer in decoder.layers:
            attn = layer.self_attn
            cross = getattr(layer, "encoder_attn", None)
            self.layers.append(
                _Layer(
                    ln1=layer.self_attn_layer_norm,
                    qkv=_fuse([attn.q_proj, attn.k_proj, attn.v_proj]),
                    out=attn.out_proj.weight.detach(),
                    ln2=layer.encoder_attn_layer_norm if cross is not None else None,
                    cross_q=cross.q_proj.weight.detach() if cross is not None else None,
                    cross_k=cross.k_proj.weight.detach() if cross is not None else None,
                    cross_v=cross.v_proj.weight.detach() if cross is not None else None,
                    cross_out=cross.out_proj.weight.detach() if cross is not None else None,
                    ln3=layer.final_layer_norm,
                    fc1=layer.fc1.weight.detach(),
                    fc2=layer.fc2.weight.detach(),
                )
            )
        if any(lin.bias is not None for layer in decoder.layers for lin in (layer.fc1, layer.fc2)):
            raise ValueError("MusicGen decoder MLPs are expected to be bias-free")
        self.has_cross = self.layers[0].cross_q is not None
        self.static_shapes = static_shapes
        self.k_cache: torch.Tensor | None = None
        self.v_cache: torch.Tensor | None = None
        self.cross_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.cross_mask: torch.Tensor | None = None
        self._step_fn = self._step_static

    @property
    def device(self) -> torch.device:
        return self.embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    # --- setup -------------------------------------------------------------------------------
    def allocate(self, rows: int, length: int) -> None:
        """Preallocate the self-attention cache for `rows` sequences of up to `length` positions."""
        shape = (len(self.layers), rows, self.heads, length, self.head_dim)
        if self.k_cache is None or self.k_cache.shape != shape:
            self.k_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
            self.v_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        elif self.static_shapes:  # attends over the whole cache (masked): keep stale values finite and tidy
            self.k_cache.zero_()
            self.v_cache.zero_()
        if self.positions.weights.shape[0] < length:
            self.positions.make_weights(length, self.hidden)

    def release(self) -> None:
        self.k_cache = self.v_cache = None
        self.cross_kv = []
        self.cross_mask = None

    def set_cross(self, states: torch.Tensor, mask: torch.Tensor) -> None:
        """Text condition (rows, S, D) and its mask (rows, S); rows without any valid key attend to
        all-zero states (the unconditional half of guidance), which yields zeros as in HF."""
        states = states.to(self.dtype)
        rows, length, _ = states.shape
        self.cross_kv = []
        for layer in self.layers:
            k = F.linear(states, layer.cross_k).view(rows, length, self.heads, self.head_dim).transpose(1, 2)
            v = F.linear(states, layer.cross_v).view(rows, length, self.heads, self.head_dim).transpose(1, 2)
            self.cross_kv.append((k.contiguous(), v.contiguous()))
        mask = mask.bool().clone()
        mask[~mask.any(dim=1)] = True
        self.cross_mask = mask[:, None, None, :] if not bool(mask.all()) else None

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(rows, K, T) token ids -> summed codebook embeddings (rows, T, D)."""
        return self.embed[self.codebook_index[None, :, None], codes].sum(dim=1)

    # --- forward -----------------------------------------------------------------------------
    def forward(self, embeds: torch.Tensor, start: int) -> torch.Tensor:
        """Run `embeds` (rows, T, D) at positions [start, start+T); return last-position logits."""
        rows, length, _ = embeds.shape
        x = _pad_rows(embeds + self.positions.weights[start : start + length].to(embeds.dtype))
        end = start + length
        causal = None
        if length > 1:
            causal = torch.ones(length, end, dtype=torch.bool, device=x.device).tril(diagonal=start)
        for i, layer in enumerate(self.layers):
            qkv = F.linear(layer.ln1(x), layer.qkv)[:rows]
            q, k, v = qkv.view(rows, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            self.k_cache[i, :, :, start:end] = k
            self.v_cache[i, :, :, start:end] = v
            attn = F.scaled_dot_product_attention(
                q, self.k_cache[i, :, :, :end], self.v_cache[i, :, :, :end], attn_mask=causal
            )
            x = x + F.linear(_pad_rows(attn.transpose(1, 2).reshape(rows, length, self.hidden)), layer.out)
            x = self._cross(x, i, layer, rows)
            x = x + F.linear(F.gelu(F.linear(layer.ln3(x), layer.fc1)), layer.fc2)
        return self._logits(x[:, -1])[:rows]

    def step(self, codes: torch.Tensor, position: int) -> torch.Tensor:
        """One token per row (rows, K) at `position`; logits (rows, K, V) float32."""
        if not self.static_shapes:
            return self.forward(self.embed_codes(codes[:, :, None]), position)
        pos = torch.tensor([position], device=self.device)
        return self._step_fn(codes, pos)

    def compile(self) -> None:
        """Compile the static-shape step (CUDA graphs via mode 'reduce-overhead')."""
        self.static_shapes = True
        self._step_fn = torch.compile(
            self._step_static, mode="reduce-overhead", fullgraph=False, dynamic=False
        )

    def _step_static(self, codes: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        rows = codes.shape[0]
        x = self.embed_codes(codes[:, :, None]) + self.positions.weights.index_select(0, pos).to(self.dtype)
        x = _pad_rows(x)
        length = self.k_cache.shape[3]
        valid = (torch.arange(length, device=self.device) <= pos)[None, :]  # (1, L): all rows and heads
        for i, layer in enumerate(self.layers):
            qkv = F.linear(layer.ln1(x), layer.qkv)[:rows]
            q, k, v = qkv.view(rows, 1, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            self.k_cache[i].index_copy_(2, pos, k)
            self.v_cache[i].index_copy_(2, pos, v)
            attn = F.scaled_dot_product_attention(q, self.k_cache[i], self.v_cache[i], attn_mask=valid)
            x = x + F.linear(_pad_rows(attn.transpose(1, 2).reshape(rows, 1, self.hidden)), layer.out)
            x = self._cross(x, i, layer, rows)
            x = x + F.linear(F.gelu(F.linear(layer.ln3(x), layer.fc1)), layer.fc2)
        return self._logits(x[:, -1])[:rows]

    def _cross(self, x: torch.Tensor, i: int, layer: _Layer, rows: int) -> torch.Tensor:
        if layer.cross_q is None:
            return x
        length = x.shape[1]
        q = (
            F.linear(layer.ln2(x), layer.cross_q)[:rows]
            .view(rows, length, self.heads, self.head_dim)
            .transpose(1, 2)
        )
        k, v = self.cross_kv[i]
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=self.cross_mask)
        return x + F.linear(
            _pad_rows(attn.transpose(1, 2).reshape(rows, length, self.hidden)), layer.cross_out
        )

    def _logits(self, last: torch.Tensor) -> torch.Tensor:
        h = self.final_ln(last)
        return F.linear(h, self.heads_weight).view(-1, self.num_codebooks, self.vocab).float()
