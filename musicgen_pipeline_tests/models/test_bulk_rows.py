"""Rows of one batched call are independent: each is bit-identical to generating it alone.

This is the property bulk rendering rests on (several requests' scenes in one MusicGen call, each
request's audio exactly what rendering it alone makes). The rows differ in everything a request can
vary: prompt (and its token length), seed, duration (one and several model windows), continuation
context, melody reference (or none).
"""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.models.loaders import get_musicgen
from musicgen_pipeline.models.musicgen import GenerationRow
from musicgen_pipeline.models.params import GenerationParams

pytestmark = pytest.mark.slow

# 2.5 s windows with 0.5 s of context: a 3 s row needs two windows, a 1 s row one.
PARAMS = GenerationParams(window_seconds=2.5, context_seconds=0.5, trim_seconds=0.25)


def _assert_same(bulk, alone) -> None:
    np.testing.assert_array_equal(bulk.codes, alone.codes)
    assert bulk.audio.samples.shape == alone.audio.samples.shape
    np.testing.assert_array_equal(bulk.audio.samples, alone.audio.samples)  # bit-identical, not close
    assert (bulk.prompt, bulk.seed) == (alone.prompt, alone.seed)


def test_rows_of_different_requests_equal_their_single_calls():
    mg = get_musicgen("tiny-random", device="cpu", dtype="float32")
    prev_a = mg.generate(["peaceful morning"], 1.0, seeds=[11], params=PARAMS)[0]
    prev_b = mg.generate(["dark night"], 0.3, seeds=[12], params=PARAMS)[0]  # shorter than the context
    rows = [
        GenerationRow("calm piano", 5, 1.0),
        GenerationRow("epic drums with a big choir and strings", 6, 3.0),
        GenerationRow("jazz", 7, 0.7, continue_from=prev_a),
        GenerationRow("lofi beat", 8, 2.6, continue_from=prev_a),
        GenerationRow("calm piano", 9, 1.0, continue_from=prev_b),
        GenerationRow("calm piano", 10, 0.5),
    ]
    bulk = mg.generate_rows(rows, params=PARAMS)
    assert [r.batch for r in bulk] == [len(rows)] * len(rows)
    singles = [mg.generate_rows([row], params=PARAMS)[0] for row in rows]
    for got, alone in zip(bulk, singles, strict=True):
        _assert_same(got, alone)
        assert alone.batch == 1
    # durations are each row's own
    assert [r.audio.frames for r in bulk] == [round(r.duration * 32000) for r in rows]
    # the rows are really different tracks (same prompt, other seed / context)
    assert (bulk[0].codes != bulk[4].codes[:, :50]).mean() > 0.5
    # chunked by the batch limit: same rows again, at most 2 per call
    chunked = mg.generate_rows(rows, params=PARAMS, max_batch=2)
    assert max(r.batch for r in chunked) == 2
    for got, alone in zip(chunked, singles, strict=True):
        _assert_same(got, alone)


def test_melody_rows_each_with_their_own_reference():
    mel = get_musicgen("tiny-random-melody", device="cpu", dtype="float32")
    sr = 32000
    t = np.arange(sr * 3) / sr
    a440 = Audio(np.sin(2 * np.pi * 440 * t).astype(np.float32), sr)
    c523 = Audio(np.sin(2 * np.pi * 523.25 * t).astype(np.float32), sr)
    rows = [
        GenerationRow("piano", 1, 1.0, melody=a440),
        GenerationRow("strings", 2, 0.6, melody=c523),
        GenerationRow("a long prompt with many words", 3, 0.5),
        GenerationRow("piano", 4, 2.8, melody=c523),
    ]
    bulk = mel.generate_rows(rows, params=PARAMS)
    for row, got in zip(rows, bulk, strict=True):
        _assert_same(got, mel.generate_rows([row], params=PARAMS)[0])
    # the reference matters per row: row 0 with the other reference is other music
    other = mel.generate_rows([GenerationRow("piano", 1, 1.0, melody=c523)], params=PARAMS)[0]
    assert (other.codes != bulk[0].codes).mean() > 0.3


def test_batch_limit_is_checked():
    mg = get_musicgen("tiny-random", device="cpu", dtype="float32")
    with pytest.raises(InputError, match="max_batch"):
        mg.generate_rows([GenerationRow("x", 1, 1.0)] * 2, max_batch=0)


def test_a_row_sees_the_same_attention_keys_alone_and_beside_a_longer_prompt():
    """At musicgen-small's attention shape (16 heads of 64), CPU attention over a different number of
    masked text keys moved a row's logits by ~1e-6, enough to flip a sampled code now and then (found
    by bench_bulk: a continuation row differed from its single render in 18.8 % of its codes). Rows
    are padded to their prompt's `text_bucket` instead of the longest prompt of the batch."""
    import torch

    from musicgen_pipeline.models.musicgen import TEXT_BUCKET, MusicGen, _RowState, text_bucket
    from musicgen_pipeline.models.tiny import musicgen_from_config, musicgen_small_config, tiny_tokenizer

    assert [text_bucket(n) for n in (1, TEXT_BUCKET, TEXT_BUCKET + 1)] == [64, 64, 128]
    config = musicgen_small_config()
    config.decoder.num_hidden_layers = 2  # small's attention shape; two layers keep the test quick
    config.text_encoder.num_layers = 1
    mg = MusicGen(musicgen_from_config(config), tiny_tokenizer(), model_id="small-2-layers",
                  device=torch.device("cpu"), dtype=torch.float32, load_seconds=0.0)  # fmt: skip
    short, longer = "piano", "cinematic orchestral soundtrack with sweeping strings and brass " * 2
    assert int(mg._text_state(short).shape[1]) < int(mg._text_state(longer).shape[1]) <= TEXT_BUCKET

    def row0_logits(prompts: list[str]) -> list[torch.Tensor]:
        states = [_RowState(index=i, plan=[], generator=torch.Generator(), text=mg._text_state(p),
                            melody=None, history=None) for i, p in enumerate(prompts)]  # fmt: skip
        rows, k = len(prompts), mg.model.decoder.config.num_codebooks
        codes = torch.randint(0, 2048, (1, k, 40), generator=torch.Generator().manual_seed(0)).repeat(
            rows, 1, 1
        )
        with torch.inference_mode():
            mg._set_text(states, cfg=True)
            mg.fast.allocate(rows * 2, 48)
            out = [
                mg.fast.forward(mg.fast.embed_codes(torch.cat([codes, codes])), 0)
            ]  # a continuation's prefill
            for s in range(4):  # then steps
                out.append(mg.fast.step(torch.cat([codes[:, :, s]] * 2), 40 + s))
        return [o[[0, rows]] for o in out]  # row 0's conditional and unconditional logits

    alone, beside = row0_logits([short]), row0_logits([short, longer])
    for a, b in zip(alone, beside, strict=True):
        assert torch.equal(a, b), float((a - b).abs().max())
