"""MusicGen Melody's condition: the one-hot chroma of a reference recording.

Same features as transformers' `MusicgenMelodyFeatureExtractor` (STFT n_fft 16384, hop 4096,
normalised power spectrogram, chroma filter bank, arg-max per frame), computed with torch.stft so
torchaudio is not needed. A reference shorter than the requested span is looped.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from musicgen_pipeline.audio.io import Audio, resample

MELODY_N_FFT = 16384
MELODY_HOP = 4096


def melody_chroma(melody: Audio, sample_rate: int, start_seconds: float, frames: int) -> torch.Tensor:
    """One-hot chroma (frames, 12) of the reference from `start_seconds`, as MusicGen Melody expects."""
    from transformers.audio_utils import chroma_filter_bank

    mono = resample(melody, sample_rate).mono().astype(np.float32)
    span = math.ceil(frames * MELODY_HOP) + MELODY_N_FFT
    start = round(start_seconds * sample_rate) % max(1, mono.shape[0])
    reps = math.ceil((start + span) / mono.shape[0])
    wav = torch.from_numpy(np.tile(mono, reps)[start : start + frames * MELODY_HOP])
    if wav.shape[0] < MELODY_N_FFT:
        pad = MELODY_N_FFT - wav.shape[0]
        wav = F.pad(wav, (pad // 2, pad - pad // 2))
    window = torch.hann_window(MELODY_N_FFT)
    spec = torch.stft(wav, MELODY_N_FFT, MELODY_HOP, window=window, center=True, pad_mode="reflect",
                      return_complex=True).abs().pow(2) / window.pow(2).sum()  # fmt: skip
    filters = torch.from_numpy(
        chroma_filter_bank(
            sampling_rate=sample_rate, num_frequency_bins=MELODY_N_FFT, tuning=0, num_chroma=12
        )
    ).float()
    chroma = torch.nn.functional.normalize(filters @ spec, p=float("inf"), dim=0, eps=1e-6).T
    onehot = torch.zeros_like(chroma)
    onehot.scatter_(1, chroma.argmax(dim=1, keepdim=True), 1.0)
    return onehot[:frames]
