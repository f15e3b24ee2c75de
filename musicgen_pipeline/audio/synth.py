"""Synthetic music with known ground truth, for tests, benchmarks and the offline demo.

Everything here is deterministic: the same arguments (and seed) give the same samples, bit for bit.
Beats are exactly where `beat_times(bpm, duration, offset)` says; `synth_song(..., stems=True)`
returns the exact component stems, which sum to the mix.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.stems import STEMS_4, Stems

NOTE_OFFSETS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# I - V - vi - IV in a major key: (semitones above the tonic, minor?)
PROGRESSION = ((0, False), (7, False), (9, True), (5, False))


def note_hz(name: str, octave: int) -> float:
    """Equal-tempered frequency (A4 = 440 Hz) of a note name like 'A', 'C#', 'Eb' in `octave`."""
    name = name.strip()
    if not name or name[0].upper() not in NOTE_OFFSETS:
        raise ValueError(f"unknown note name {name!r}")
    semis = NOTE_OFFSETS[name[0].upper()]
    for accidental in name[1:]:
        if accidental == "#":
            semis += 1
        elif accidental in "b♭":
            semis -= 1
        else:
            raise ValueError(f"unknown note name {name!r}")
    midi = 12 * (octave + 1) + semis
    return float(440.0 * 2.0 ** ((midi - 69) / 12.0))


def beat_times(bpm: float, duration: float, offset: float = 0.0) -> np.ndarray:
    """Ground-truth beat times (seconds) of every generator here: offset, offset + 60/bpm, ... < duration."""
    if bpm <= 0:
        raise ValueError(f"bpm must be positive, got {bpm}")
    period = 60.0 / bpm
    count = int(np.floor((duration - offset) / period - 1e-9)) + 1 if duration > offset else 0
    return offset + period * np.arange(max(count, 0))


def _frames(duration: float, sample_rate: int) -> int:
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    return round(duration * sample_rate)


def tone(
    freq: float,
    duration: float,
    sample_rate: int = 32000,
    *,
    amplitude: float = 0.5,
    phase: float = 0.0,
    channels: int = 1,
) -> Audio:
    """A pure sine at `freq` Hz."""
    t = np.arange(_frames(duration, sample_rate)) / sample_rate
    y = amplitude * np.sin(2 * np.pi * freq * t + phase)
    return Audio(np.tile(y.astype(np.float32), (channels, 1)), sample_rate)


def chord(
    freqs: list[float] | tuple[float, ...],
    duration: float,
    sample_rate: int = 32000,
    *,
    amplitude: float = 0.5,
    harmonics: int = 3,
    channels: int = 1,
) -> Audio:
    """A sustained chord: each frequency with `harmonics` partials (1/k amplitudes), peak-scaled to `amplitude`,
    with 10 ms fades at both ends so it starts and stops without a click."""
    n = _frames(duration, sample_rate)
    t = np.arange(n) / sample_rate
    y = np.zeros(n)
    for f in freqs:
        for k in range(1, harmonics + 1):
            if k * f < sample_rate / 2:
                y += np.sin(2 * np.pi * k * f * t) / k
    y *= _edge_fade(n, round(0.01 * sample_rate))
    peak = np.max(np.abs(y)) or 1.0
    return Audio(np.tile((amplitude * y / peak).astype(np.float32), (channels, 1)), sample_rate)


def click_track(
    bpm: float,
    duration: float,
    sample_rate: int = 32000,
    *,
    offset: float = 0.0,
    click_freq: float = 1000.0,
    click_seconds: float = 0.03,
    accent_every: int = 4,
    amplitude: float = 0.8,
    channels: int = 1,
) -> Audio:
    """A metronome: a decaying `click_freq` burst on every beat of `beat_times(bpm, duration, offset)`,
    the first of every `accent_every` beats one octave higher (0 = no accents)."""
    n = _frames(duration, sample_rate)
    y = np.zeros(n)
    length = max(8, round(click_seconds * sample_rate))
    t = np.arange(length) / sample_rate
    env = np.exp(-t / (click_seconds / 5)) * _attack_release(
        length, max(2, round(0.0005 * sample_rate)), length // 4
    )
    for i, beat in enumerate(beat_times(bpm, duration, offset)):
        freq = click_freq * (2 if accent_every and i % accent_every == 0 else 1)
        _add(y, round(beat * sample_rate), amplitude * env * np.sin(2 * np.pi * freq * t))
    return Audio(np.tile(y.astype(np.float32), (channels, 1)), sample_rate)


def synth_song(
    bpm: float,
    duration: float,
    sample_rate: int = 32000,
    *,
    root: str = "A",
    seed: int = 0,
    offset: float = 0.0,
    channels: int = 1,
    stems: bool = False,
    peak: float = 0.8,
) -> Audio | tuple[Audio, Stems]:
    """A small pop arrangement in `root` major at `bpm`: kick on every beat, snare on 2 and 4, hi-hats on
    eighths (seeded velocities), a bass note per beat on the chord root, and a I-V-vi-IV chord pad per bar.

    Beats fall exactly on `beat_times(bpm, duration, offset)`. With `stems=True` returns
    `(mix, {"drums", "bass", "other", "vocals"})`; the stems sum to the mix (vocals are silent).
    """
    n = _frames(duration, sample_rate)
    rng = np.random.default_rng(seed)
    sr = sample_rate
    beats = beat_times(bpm, duration, offset)
    period = 60.0 / bpm
    tonic_bass = note_hz(root, 2)
    tonic_pad = note_hz(root, 4)

    drums = np.zeros((2, n))
    bass = np.zeros(n)
    pad = np.zeros((2, n))

    # --- drums ------------------------------------------------------------------------------
    kick_len = round(0.3 * sr)
    tk = np.arange(kick_len) / sr
    kick_phase = 2 * np.pi * np.cumsum(45.0 + 75.0 * np.exp(-tk / 0.03)) / sr
    kick = (
        np.sin(kick_phase)
        * np.exp(-tk / 0.09)
        * _attack_release(kick_len, round(0.002 * sr), round(0.03 * sr))
    )
    snare_len = round(0.18 * sr)
    ts = np.arange(snare_len) / sr
    hat_len = round(0.06 * sr)
    th = np.arange(hat_len) / sr
    snare_band = signal.butter(2, [1000, min(7000, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    hat_band = signal.butter(2, min(7000, 0.4 * sr), btype="highpass", fs=sr, output="sos")
    for i, beat in enumerate(beats):
        start = round(beat * sr)
        _add(drums[0], start, 0.9 * kick)
        _add(drums[1], start, 0.9 * kick)
        if i % 4 in (1, 3):
            noise = signal.sosfilt(snare_band, rng.standard_normal(snare_len))
            body = 0.5 * np.sin(2 * np.pi * 185.0 * ts) * np.exp(-ts / 0.05)
            snare = (0.6 * noise * np.exp(-ts / 0.06) + body) * _attack_release(
                snare_len, round(0.002 * sr), round(0.03 * sr)
            )
            _add(drums[0], start, 0.55 * snare)
            _add(drums[1], start, 0.45 * snare)
        for half in (0.0, 0.5):
            velocity = 0.12 + 0.08 * rng.random()
            noise = signal.sosfilt(hat_band, rng.standard_normal(hat_len))
            hat = (
                velocity
                * noise
                * np.exp(-th / 0.012)
                * _attack_release(hat_len, round(0.001 * sr), round(0.01 * sr))
            )
            at = round((beat + half * period) * sr)
            _add(drums[0], at, 0.8 * hat)
            _add(drums[1], at, 1.2 * hat)

    # --- bass: one note per beat on the current chord's root --------------------------------
    note_len = round(period * sr)
    tb = np.arange(note_len) / sr
    bass_env = np.exp(-tb / (0.6 * period)) * _edge_fade(note_len, round(0.005 * sr))
    for i, beat in enumerate(beats):
        semis, _minor = PROGRESSION[(i // 4) % len(PROGRESSION)]
        f = tonic_bass * 2 ** (semis / 12.0)
        if f > 90.0:
            f /= 2.0
        wave = sum(np.sin(2 * np.pi * k * f * tb) / k**1.5 for k in range(1, 5))
        _add(bass, round(beat * sr), 0.5 * wave * bass_env)

    # --- chord pad: one triad per bar --------------------------------------------------------
    bar_starts = beats[::4]
    for j, bar in enumerate(bar_starts):
        semis, minor = PROGRESSION[j % len(PROGRESSION)]
        f0 = tonic_pad * 2 ** (semis / 12.0) / 2.0  # octave 3
        triad = (f0, f0 * 2 ** ((3 if minor else 4) / 12.0), f0 * 2 ** (7 / 12.0))
        length = round(4 * period * sr)
        tp = np.arange(length) / sr
        env = _edge_fade(length, round(0.03 * sr))
        voice = np.zeros((2, length))
        for v, f in enumerate(triad):
            detune = 1.0 + 0.002 * (rng.random() - 0.5)
            partials = sum(np.sin(2 * np.pi * k * f * detune * tp) / k**2 for k in range(1, 4))
            pan = 0.35 + 0.3 * v / 2
            voice[0] += (1 - pan) * partials
            voice[1] += pan * partials
        start = round(bar * sr)
        _add(pad[0], start, 0.18 * voice[0] * env)
        _add(pad[1], start, 0.18 * voice[1] * env)

    if channels == 1:
        drums_c, bass_c, pad_c = (
            drums.mean(axis=0, keepdims=True),
            bass[None, :],
            pad.mean(axis=0, keepdims=True),
        )
    elif channels == 2:
        drums_c, bass_c, pad_c = drums, np.tile(bass, (2, 1)), pad
    else:
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    mix = drums_c + bass_c + pad_c
    scale = peak / (np.max(np.abs(mix)) or 1.0)
    parts = {
        "drums": (drums_c * scale).astype(np.float32),
        "bass": (bass_c * scale).astype(np.float32),
        "other": (pad_c * scale).astype(np.float32),
        "vocals": np.zeros((channels, n), dtype=np.float32),
    }
    total = parts["drums"] + parts["bass"] + parts["other"] + parts["vocals"]
    audio = Audio(total, sample_rate)
    if stems:
        return audio, {name: parts[name] for name in STEMS_4}
    return audio


def _edge_fade(n: int, fade: int, *, out: bool = True) -> np.ndarray:
    """Raised-cosine fade-in of `fade` samples (and fade-out when `out`) on a length-n envelope."""
    env = np.ones(n)
    fade = min(fade, n // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        env[:fade] = ramp
        if out:
            env[n - fade :] = ramp[::-1]
    return env


def _attack_release(n: int, attack: int, release: int) -> np.ndarray:
    """Raised-cosine attack of `attack` samples and release of `release` samples (sounds end at zero)."""
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    if release > 0:
        env[n - release :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 1) / release)
    return env


def _add(target: np.ndarray, start: int, sound: np.ndarray) -> None:
    """Add `sound` into `target` at `start`, cut at the end of `target`."""
    if start >= target.shape[-1] or start < 0:
        return
    stop = min(target.shape[-1], start + sound.shape[-1])
    target[..., start:stop] += sound[..., : stop - start]
