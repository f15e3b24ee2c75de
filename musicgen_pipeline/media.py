"""Files and pictures the assets write: exact float32 intermediates, waveform + spectrogram PNGs.

Intermediates (segments, aligned segments, stems) are float32 WAV: exact (no 16-bit rounding between
stages, so a resumed run equals an uninterrupted one bit for bit) and still plain files any player
opens. The final soundtrack goes through `write_audio` (16-bit PCM WAV, or the requested format).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from musicgen_pipeline.audio.atomic_write import write_float_wav_atomic
from musicgen_pipeline.audio.io import Audio

PICTURE_SIZE = (6.4, 2.8)  # inches
PICTURE_DPI = 64
PICTURE_COLUMNS = 480  # spectrogram frames (the picture is ~410 px wide)


def write_exact(path: Path, audio: Audio) -> Path:
    """float32 WAV, bit-exact round trip with `read_exact`; written atomically (a full disk is an
    `AudioWriteError` naming the file and the reason, and leaves no partial file)."""
    return write_float_wav_atomic(path, audio)


def read_exact(path: Path) -> Audio:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(np.ascontiguousarray(data.T), int(rate))


def picture_png(audio: Audio, title: str) -> bytes:
    """Waveform (top) and log-frequency spectrogram (bottom) of `audio` as PNG bytes (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    mono = audio.mono()
    rate = audio.sample_rate
    fig = Figure(figsize=PICTURE_SIZE, dpi=PICTURE_DPI)
    ax_wave, ax_spec = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    step = max(1, mono.size // 1000)
    frames = mono.size - mono.size % step
    if frames:
        blocks = mono[:frames].reshape(-1, step)
        t = np.arange(blocks.shape[0]) * step / rate
        ax_wave.fill_between(t, blocks.min(axis=1), blocks.max(axis=1), linewidth=0, color="#3b6ea5")
    ax_wave.set_ylim(-1, 1)
    ax_wave.set_ylabel("amp")
    ax_wave.set_title(title, fontsize=9)
    n_fft = 2048 if rate >= 22050 else 1024
    if mono.size >= n_fft:
        # About PICTURE_COLUMNS analysis frames whatever the length: the picture is that many pixels wide.
        hop = max(n_fft // 4, mono.size // PICTURE_COLUMNS)
        noverlap = max(0, n_fft - hop)
        with np.errstate(divide="ignore"):  # silent frames are -inf dB, drawn at vmin
            ax_spec.specgram(
                mono, NFFT=n_fft, Fs=rate, noverlap=noverlap, cmap="magma", scale="dB", vmin=-120
            )
        ax_spec.set_yscale("symlog", linthresh=200)
        ax_spec.set_ylim(30, rate / 2)
    ax_spec.set_ylabel("Hz")
    ax_spec.set_xlabel("seconds")
    fig.subplots_adjust(
        left=0.11, right=0.98, top=0.9, bottom=0.15, hspace=0.08
    )  # fixed: tight_layout costs ~50 ms
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_picture(audio: Audio, title: str, path: Path) -> tuple[Path, str]:
    """Write the PNG and return (path, markdown embedding it as a data URI, which the Dagster UI renders)."""
    png = picture_png(audio, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    data = base64.b64encode(png).decode("ascii")
    return path, f"![{title}](data:image/png;base64,{data})"
