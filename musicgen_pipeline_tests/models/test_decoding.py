"""Our KV-cached decoder step equals the Hugging Face decoder forward (MusicGen and Melody)."""

from __future__ import annotations

import pytest
import torch

from musicgen_pipeline.models.decoding import FastDecoder
from musicgen_pipeline.models.tiny import tiny_musicgen


@pytest.mark.parametrize("model_id", ["tiny-random", "tiny-random-stereo", "tiny-random-melody"])
@pytest.mark.parametrize("static", [False, True])
def test_fast_decoder_matches_hf_forward(model_id, static):
    model, _ = tiny_musicgen(model_id, seed=1)
    lm = model.decoder
    k = lm.config.num_codebooks
    rows, steps, text_len, dim = 2, 12, 5, lm.config.hidden_size
    torch.manual_seed(0)
    codes = torch.randint(0, 2048, (rows, k, steps))
    states = torch.randn(rows, text_len, dim)
    mask = torch.ones(rows, text_len, dtype=torch.long)
    mask[1, 3:] = 0  # padded prompt in row 1
    states = states * mask[..., None]
    melody = model.config.model_type == "musicgen_melody"
    with torch.inference_mode():
        if melody:
            ref = lm(input_ids=codes.reshape(rows * k, steps), encoder_hidden_states=states).logits
            ref = ref.reshape(rows, k, text_len + steps, -1)[:, :, text_len:]
        else:
            ref = lm(input_ids=codes.reshape(rows * k, steps), encoder_hidden_states=states,
                     encoder_attention_mask=mask).logits.reshape(rows, k, steps, -1)  # fmt: skip
        fast = FastDecoder(lm, static_shapes=static)
        prefix = text_len if melody else 0
        fast.allocate(rows, prefix + steps)
        if not melody:
            fast.set_cross(states, mask)
        first = 4
        emb = fast.embed_codes(codes[:, :, :first])
        if melody:
            emb = torch.cat([states, emb], dim=1)
        got = [fast.forward(emb, 0)]
        for s in range(first, steps):
            got.append(fast.step(codes[:, :, s], prefix + s))
    torch.testing.assert_close(got[0], ref[:, :, first - 1].float(), atol=1e-4, rtol=1e-4)
    for i, s in enumerate(range(first, steps), start=1):
        torch.testing.assert_close(got[i], ref[:, :, s].float(), atol=1e-4, rtol=1e-4)


def test_fusing_keeps_hf_modules_working():
    model, _ = tiny_musicgen("tiny-random", seed=2)
    lm = model.decoder
    codes = torch.randint(0, 2048, (4, 3))
    states = torch.randn(1, 2, lm.config.hidden_size)
    with torch.inference_mode():
        before = lm(input_ids=codes, encoder_hidden_states=states).logits
        FastDecoder(lm)
        after = lm(input_ids=codes, encoder_hidden_states=states).logits
    torch.testing.assert_close(before, after)
    assert lm.model.decoder.layers[0].self_attn.k_proj.weight.untyped_storage().data_ptr() == (
        lm.model.decoder.layers[0].self_attn.q_proj.weight.untyped_storage().data_ptr()
    )  # q/k/v now share one fused tensor: no weight is stored twice


@pytest.mark.parametrize("static", [False, True])
def test_rows_are_bit_identical_whatever_the_batch(static):
    # Wide enough for BLAS's blocked kernels (the path real checkpoints take).
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    config = MusicgenDecoderConfig(vocab_size=2048, num_hidden_layers=2, hidden_size=512, ffn_dim=2048,
                                   num_attention_heads=8, num_codebooks=4, dropout=0.0)  # fmt: skip
    torch.manual_seed(0)
    lm = MusicgenForCausalLM(config).eval()
    fast = FastDecoder(lm, static_shapes=static)
    states = torch.randn(6, 7, 512)
    codes = torch.randint(0, 2048, (6, 4, 5))

    def run(rows: int) -> list[torch.Tensor]:
        with torch.inference_mode():
            fast.allocate(rows, 16)
            fast.set_cross(states[:rows], torch.ones(rows, 7))
            out = [fast.forward(fast.embed_codes(codes[:rows, :, :2]), 0)]
            out += [fast.step(codes[:rows, :, s], s) for s in range(2, 5)]
        return out

    alone, batched = run(2), run(6)
    for a, b in zip(alone, batched, strict=True):
        assert torch.equal(a, b[:2])
