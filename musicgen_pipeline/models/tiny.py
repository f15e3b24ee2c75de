"""Offline model configs: `tiny-random` MusicGen (mono, stereo, melody) and HTDemucs, plus a T5 tokenizer.

Nothing here touches the network. The tiny MusicGen keeps every *interface* number of the released
models (32 kHz, 50 code frames per second, 4 codebooks of 2048 codes, delay pattern, 30 s window,
same special tokens) and shrinks only the widths and depths, so code paths exercised in tests are the
ones real checkpoints take. Weights are random: the audio is noise-like, but shapes, timing, seeding,
batching and continuation behave exactly as with real weights.

`musicgen_small_config()` / `musicgen_medium_config()` are the released musicgen-small (about 420M
parameters) and musicgen-medium (about 1.5B) architectures, used by the benchmarks to measure speed
without downloading weights.
"""

from __future__ import annotations

import string

import torch
from transformers import (
    EncodecConfig,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenMelodyConfig,
    MusicgenMelodyDecoderConfig,
    MusicgenMelodyForConditionalGeneration,
    T5Config,
    T5Tokenizer,
)
from transformers.utils import logging as hf_logging

from musicgen_pipeline.models.ids import TINY_IDS

CODEBOOK_SIZE = 2048  # special tokens (pad = bos = decoder start) use id CODEBOOK_SIZE, as released models do
SAMPLE_RATE = 32_000
UPSAMPLING_RATIOS = (8, 5, 4, 4)  # 640 samples per code frame -> 50 frames/s at 32 kHz

_WORDS = [
    "music",
    "ambient",
    "cinematic",
    "orchestral",
    "soundtrack",
    "piano",
    "strings",
    "drums",
    "bass",
    "guitar",
    "synth",
    "jazz",
    "rock",
    "pop",
    "electronic",
    "calm",
    "peaceful",
    "joyful",
    "happy",
    "sad",
    "dark",
    "epic",
    "gentle",
    "soft",
    "loud",
    "slow",
    "fast",
    "upbeat",
    "mellow",
    "morning",
    "evening",
    "night",
    "celebration",
    "farewell",
    "adventure",
    "trip",
    "with",
    "and",
    "the",
    "of",
    "a",
    "in",
    "for",
    "sweeping",
    "warm",
    "bright",
    "lofi",
    "beat",
    "melody",
    "chill",
    "dance",
    "house",
    "techno",
    "folk",
    "acoustic",
    "violin",
    "cello",
    "choir",
]


def tiny_tokenizer() -> T5Tokenizer:
    """A small unigram T5 tokenizer built in memory: whole common words, then single characters.

    Any text tokenizes (unknown characters map to `<unk>`); no vocabulary file is read or written.
    """
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{w}", -2.0) for w in _WORDS]
    chars = string.ascii_lowercase + string.digits + ",.-!?'"
    pieces += [(f"▁{c}", -8.0) for c in chars]
    pieces += [(c, -9.0) for c in chars + string.ascii_uppercase]
    pieces += [("▁", -10.0)]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _t5_config(vocab_size: int, d_model: int = 32) -> T5Config:
    return T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


def _encodec_config() -> EncodecConfig:
    return EncodecConfig(
        sampling_rate=SAMPLE_RATE,
        audio_channels=1,
        hidden_size=32,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=list(UPSAMPLING_RATIOS),
        codebook_size=CODEBOOK_SIZE,
        codebook_dim=32,
        target_bandwidths=[2.2],  # 4 codebooks x 11 bits x 50 Hz
        num_lstm_layers=1,
        norm_type="weight_norm",
        use_causal_conv=False,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
        trim_right_ratio=1.0,
    )


def _decoder_kwargs(channels: int) -> dict[str, object]:
    return {
        "vocab_size": CODEBOOK_SIZE,
        "max_position_embeddings": 2048,
        "num_hidden_layers": 2,
        "ffn_dim": 128,
        "num_attention_heads": 4,
        "hidden_size": 64,
        "dropout": 0.0,
        "num_codebooks": 4 * channels,
        "audio_channels": channels,
        "pad_token_id": CODEBOOK_SIZE,
        "bos_token_id": CODEBOOK_SIZE,
    }


def _randomise_codebooks(model: torch.nn.Module) -> None:
    """EnCodec initialises its codebooks to zeros (they are learned by k-means); random-weight models
    need random code vectors or every code would decode to the same audio."""
    for layer in model.audio_encoder.quantizer.layers:
        book = layer.codebook
        book.embed.normal_(0.0, 1.0)
        book.embed_avg.copy_(book.embed)
        book.cluster_size.fill_(1.0)


def _finish(model: torch.nn.Module) -> torch.nn.Module:
    cfg = model.generation_config
    cfg.decoder_start_token_id = CODEBOOK_SIZE
    cfg.pad_token_id = CODEBOOK_SIZE
    cfg.bos_token_id = CODEBOOK_SIZE
    cfg.do_sample = True
    cfg.guidance_scale = 3.0
    cfg.max_length = 1500
    return model.eval()


def tiny_musicgen(model_id: str = "tiny-random", *, seed: int = 0) -> tuple[torch.nn.Module, T5Tokenizer]:
    """Build a tiny MusicGen (`tiny-random`, `tiny-random-stereo`) or MusicGen Melody (`tiny-random-melody`).

    Same `seed` -> same weights, so results are reproducible across processes.
    """
    if model_id not in TINY_IDS:
        raise ValueError(f"unknown tiny model {model_id!r}; expected one of {TINY_IDS}")
    tokenizer = tiny_tokenizer()
    text = _t5_config(len(tokenizer))
    audio = _encodec_config()
    channels = 2 if model_id == "tiny-random-stereo" else 1
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # silence "pad_token_id 2048 outside vocabulary": 2048 is MusicGen's special id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model_id == "tiny-random-melody":
            config = MusicgenMelodyConfig(
                text_encoder=text,
                audio_encoder=audio,
                decoder=MusicgenMelodyDecoderConfig(**_decoder_kwargs(1)),
                num_chroma=12,
                chroma_length=235,
            )
            model = MusicgenMelodyForConditionalGeneration(config)
        else:
            config = MusicgenConfig(
                text_encoder=text,
                audio_encoder=audio,
                decoder=MusicgenDecoderConfig(**_decoder_kwargs(channels)),
            )
            model = MusicgenForConditionalGeneration(config)
        _randomise_codebooks(model)
    config.decoder_start_token_id = CODEBOOK_SIZE
    config.pad_token_id = CODEBOOK_SIZE
    config.bos_token_id = CODEBOOK_SIZE
    hf_logging.set_verbosity(verbosity)
    return _finish(model), tokenizer


def musicgen_small_config() -> MusicgenConfig:
    """The released facebook/musicgen-small architecture (T5-base text encoder, 24-layer 1024-wide decoder)."""
    return _released_config(layers=24, width=1024, heads=16)


def musicgen_medium_config() -> MusicgenConfig:
    """The released facebook/musicgen-medium architecture: musicgen-small's text encoder and EnCodec, a
    48-layer 1536-wide decoder (24 heads, about 1.5 B weights)."""
    return _released_config(layers=48, width=1536, heads=24)


def _released_config(*, layers: int, width: int, heads: int) -> MusicgenConfig:
    """A released MusicGen architecture (mono, 32 kHz EnCodec, T5-base) with the given decoder size."""
    text = T5Config(
        vocab_size=32128,
        d_model=768,
        d_kv=64,
        d_ff=3072,
        num_layers=12,
        num_heads=12,
        feed_forward_proj="relu",
    )
    audio = EncodecConfig(
        sampling_rate=SAMPLE_RATE,
        audio_channels=1,
        hidden_size=128,
        num_filters=64,
        num_residual_layers=1,
        upsampling_ratios=list(UPSAMPLING_RATIOS),
        codebook_size=CODEBOOK_SIZE,
        target_bandwidths=[2.2],
        num_lstm_layers=2,
        use_causal_conv=False,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=CODEBOOK_SIZE,
        num_hidden_layers=layers,
        hidden_size=width,
        ffn_dim=4 * width,
        num_attention_heads=heads,
        num_codebooks=4,
        dropout=0.0,
        pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE,
    )
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder_start_token_id = CODEBOOK_SIZE
    config.pad_token_id = CODEBOOK_SIZE
    config.bos_token_id = CODEBOOK_SIZE
    return config


def musicgen_from_config(config: MusicgenConfig, *, seed: int = 0) -> MusicgenForConditionalGeneration:
    """Random-weight model of a given config (benchmarks), generation defaults as released."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MusicgenForConditionalGeneration(config)
        _randomise_codebooks(model)
    return _finish(model)


def tiny_htdemucs(*, seed: int = 0) -> torch.nn.Module:
    """A small HTDemucs (4 sources, 44.1 kHz stereo, as released) with random weights.

    Same structure as `htdemucs` (hybrid time/frequency U-Net with a cross-domain transformer),
    narrower and shallower: it separates seconds of audio in about a second on a CPU core.
    """
    from demucs.htdemucs import HTDemucs

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HTDemucs(
            sources=["drums", "bass", "other", "vocals"],
            audio_channels=2,
            samplerate=44_100,
            segment=10,
            channels=8,
            depth=4,
            t_layers=1,
            t_heads=2,
            bottom_channels=0,
        )
    return model.eval()
