"""Realistic test music made by the project itself: MIDI songs written here (drums, bass, chords, a
melody; humanised timing; optional tempo drift), rendered with Debian's `fluidsynth` and the
`fluid-soundfont-gm` General MIDI soundfont (`make fluidsynth` installs both).

Unlike `audio.synth` (exact ground truth, sine-like instruments), these clips sound like music: sampled
instruments with their own attacks and releases, a drum kit, reverb, notes that are a few ms early or
late. Ground truth is the score: `RealisticSong.beat_times()` (seconds, in the rendered clip).

Rendering is deterministic (same spec -> same MIDI -> same audio); `render_clip` caches the WAV under a
folder the caller gives (the tests use one per session).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from musicgen_pipeline.audio.io import Audio, read_audio

SOUNDFONT_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)
INSTALL_HINT = "run `make fluidsynth` as root (apt-get install fluidsynth fluid-soundfont-gm)"
TICKS = 480  # per quarter note (one beat)
RATE = 44100

# Chord progressions as scale degrees (0-based) of the key; major and minor scales in semitones.
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}


@dataclass(frozen=True)
class RealisticSong:
    """One song: tempo (BPM, at the start), key, General MIDI programs, drum groove, humanisation.

    `drift`: relative tempo change from the first to the last beat (0.03 = 3 % faster at the end),
    a performer speeding up. `jitter_ms`: standard deviation of each note's timing error.
    `start_beats`: where the clip starts in the song, in beats (a fraction: clips do not start on a beat).
    """

    bpm: float
    seconds: float = 30.0
    root: int = 57  # A3
    mode: str = "minor"
    chords_program: int = 0  # acoustic grand piano
    bass_program: int = 33  # finger bass
    lead_program: int = 73  # flute
    groove: str = "rock"  # rock | half | four (four on the floor)
    drift: float = 0.0
    jitter_ms: float = 3.0
    start_beats: float = 0.37
    seed: int = 0

    @property
    def key(self) -> str:
        return hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]

    def beat_bpm(self, beat: np.ndarray) -> np.ndarray:
        """Tempo at (the start of) each song beat."""
        total = self.total_beats()
        return self.bpm * (1.0 + self.drift * np.clip(beat / max(total - 1, 1), 0.0, 1.0))

    def total_beats(self) -> int:
        # Enough beats for the clip, the start offset and a release tail, drift included.
        return int(
            np.ceil((self.seconds + 4.0) * self.bpm * (1 + max(0.0, self.drift)) / 60.0 + self.start_beats)
        )

    def song_beat_times(self) -> np.ndarray:
        """Seconds of every beat of the song from its tick 0 (tempo changes on each beat)."""
        beats = np.arange(self.total_beats() + 1)
        periods = 60.0 / self.beat_bpm(beats[:-1].astype(float))
        return np.concatenate([[0.0], np.cumsum(periods)])

    def clip_offset(self) -> float:
        """Seconds of the song before the clip starts."""
        times = self.song_beat_times()
        i = int(np.floor(self.start_beats))
        return float(times[i] + (self.start_beats - i) * (times[i + 1] - times[i]))

    def beat_times(self) -> np.ndarray:
        """The score's beats in the rendered clip (seconds from its start), without the timing jitter."""
        t = self.song_beat_times() - self.clip_offset()
        return t[(t >= 0) & (t < self.seconds)]


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, bytes]]) -> bytes:
    events = sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # note-offs before note-ons
    data, now = b"", 0
    for tick, payload in events:
        data += _varlen(max(0, tick - now)) + payload
        now = max(now, tick)
    data += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(data)) + data


def song_midi(song: RealisticSong) -> bytes:
    """A standard MIDI file (format 1): tempo map, drums (channel 10), bass, chords, melody."""
    rng = np.random.default_rng(song.seed)
    beats = song.total_beats()
    scale = MAJOR if song.mode == "major" else MINOR
    bpms = song.beat_bpm(np.arange(beats, dtype=float))
    tempo: list[tuple[int, bytes]] = []
    for b in range(beats):
        if b == 0 or abs(bpms[b] - bpms[b - 1]) > 1e-9:
            us = round(60_000_000 / bpms[b])
            tempo.append((b * TICKS, b"\xff\x51\x03" + us.to_bytes(3, "big")))
    tracks = [_track(tempo)]

    def jitter(tick: int, beat: float) -> int:
        ms_per_tick = 60_000.0 / (float(song.beat_bpm(np.array([beat]))[0]) * TICKS)
        return max(0, tick + round(rng.normal(0.0, song.jitter_ms) / ms_per_tick))

    def note(events: list, channel: int, pitch: int, start: int, length: int, velocity: int) -> None:
        on = jitter(start, start / TICKS)
        velocity = int(np.clip(velocity + rng.integers(-8, 9), 1, 127))
        events.append((on, bytes([0x90 | channel, pitch, velocity])))
        events.append((on + max(10, length), bytes([0x80 | channel, pitch, 0])))

    drums: list[tuple[int, bytes]] = []
    bass: list[tuple[int, bytes]] = [(0, bytes([0xC0, song.bass_program]))]
    chords: list[tuple[int, bytes]] = [(0, bytes([0xC1, song.chords_program]))]
    lead: list[tuple[int, bytes]] = [(0, bytes([0xC2, song.lead_program]))]
    progression = PROGRESSIONS[song.mode]
    melody_degree = 7
    for bar in range(beats // 4 + 1):
        degree = progression[bar % len(progression)]
        chord_root = song.root + scale[degree]
        triad = [song.root + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for beat in range(4):
            t = (bar * 4 + beat) * TICKS
            if t >= beats * TICKS:
                break
            half = TICKS // 2
            # Drums: kick, snare, hi-hat eighths; a crash at the start of every 4 bars.
            kick = {"rock": (0, 2), "half": (0,), "four": (0, 1, 2, 3)}[song.groove]
            if beat in kick:
                note(drums, 9, 36, t, 60, 112)
            if song.groove == "rock" and beat == 2 and bar % 2:
                note(drums, 9, 36, t + half, 60, 90)
            snare_beats = (2,) if song.groove == "half" else (1, 3)
            if beat in snare_beats:
                note(drums, 9, 38, t, 60, 104)
            note(drums, 9, 42, t, 40, 76)
            note(drums, 9, 42, t + half, 40, 58)
            if beat == 0 and bar % 4 == 0:
                note(drums, 9, 49, t, 200, 96)
            # Bass: root on the beat, fifth or octave on the "and" of 2 and 4.
            note(bass, 0, chord_root - 24, t, TICKS - 60, 96)
            if beat in (1, 3):
                note(bass, 0, chord_root - 24 + (7 if beat == 1 else 12), t + half, half - 40, 80)
            # Chords: on 1 (held) and a push on the "and" of 3.
            if beat == 0:
                for p in triad:
                    note(chords, 1, p, t, 2 * TICKS - 30, 72)
            if beat == 2:
                for p in triad:
                    note(chords, 1, p + 12 if p < song.root else p, t + half, TICKS + half - 30, 64)
            # Melody: a random walk on the scale, quarter or two eighths.
            if rng.random() < 0.85:
                for k in range(1 if rng.random() < 0.6 else 2):
                    melody_degree = int(np.clip(melody_degree + rng.integers(-2, 3), 3, 13))
                    pitch = song.root + 12 + scale[melody_degree % 7] + 12 * (melody_degree // 7)
                    length = TICKS if k == 0 else half
                    note(lead, 2, pitch, t + k * half, length - 40, 84)
    for events in (drums, bass, chords, lead):
        tracks.append(_track(events))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS)
    return header + b"".join(tracks)


def soundfont() -> Path | None:
    return next((p for p in SOUNDFONT_PATHS if p.is_file()), None)


def fluidsynth_missing() -> str | None:
    """Why clips cannot be rendered here (None when they can)."""
    if shutil.which("fluidsynth") is None:
        return f"the `fluidsynth` binary is missing: {INSTALL_HINT}"
    if soundfont() is None:
        return f"no General MIDI soundfont in {', '.join(map(str, SOUNDFONT_PATHS))}: {INSTALL_HINT}"
    return None


def render_clip(song: RealisticSong, cache_dir: Path) -> Audio:
    """The song's clip (stereo, 44.1 kHz, `song.seconds` long), rendered once per `cache_dir`."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wav = cache_dir / f"clip_{song.key}.wav"
    if not wav.exists():
        problem = fluidsynth_missing()
        if problem:
            raise RuntimeError(problem)
        midi = cache_dir / f"song_{song.key}.mid"
        midi.write_bytes(song_midi(song))
        full = cache_dir / f"song_{song.key}.wav"
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-g",
                "0.5",
                "-r",
                str(RATE),
                "-F",
                str(full),
                str(soundfont()),
                str(midi),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        audio = read_audio(full)
        start = round(song.clip_offset() * RATE)
        clip = Audio(audio.samples[:, start : start + round(song.seconds * RATE)].copy(), RATE)
        if clip.frames < round(song.seconds * RATE):
            raise RuntimeError(f"fluidsynth rendered {audio.duration:.2f} s, too short for the clip")
        from musicgen_pipeline.audio.io import write_audio

        tmp = cache_dir / f"clip_{song.key}.tmp.wav"
        write_audio(tmp, clip)
        tmp.replace(wav)
        full.unlink()
    return read_audio(wav)


# The pairs the seam tests and benchmarks join: (A, B), 70-150 BPM, different keys, programs and grooves.
# The 84 -> 120 BPM pair is past a 25 % tempo stretch (84 x 2 = 168 -> 120 is -29 %): not tempo-matched.
PAIRS: dict[str, tuple[RealisticSong, RealisticSong]] = {
    "76-82 ballad": (
        RealisticSong(
            76, 30, root=50, mode="major", chords_program=0, lead_program=73, groove="half", seed=1
        ),
        RealisticSong(
            82,
            28,
            root=55,
            mode="major",
            chords_program=48,
            lead_program=71,
            groove="half",
            seed=2,
            start_beats=1.61,
        ),
    ),
    "92-100 pop": (
        RealisticSong(92, 32, root=57, mode="minor", chords_program=4, lead_program=65, seed=3),
        RealisticSong(
            100, 30, root=57, mode="minor", chords_program=24, lead_program=56, seed=4, start_beats=2.2
        ),
    ),
    "120-112 rock": (
        RealisticSong(
            120, 30, root=52, mode="minor", chords_program=29, bass_program=34, lead_program=30, seed=5
        ),
        RealisticSong(
            112, 26, root=55, mode="major", chords_program=0, lead_program=66, seed=6, start_beats=0.81
        ),
    ),
    "140-128 dance": (
        RealisticSong(
            140, 28, root=53, mode="minor", chords_program=81, bass_program=38, lead_program=80, seed=7
        ),
        RealisticSong(
            128,
            30,
            root=53,
            mode="minor",
            chords_program=89,
            bass_program=38,
            lead_program=81,
            groove="four",
            seed=8,
            start_beats=3.4,
        ),
    ),
    "100-96 drifting": (
        RealisticSong(100, 32, root=60, mode="major", chords_program=0, lead_program=40, drift=0.04, seed=9),
        RealisticSong(
            96,
            30,
            root=62,
            mode="major",
            chords_program=48,
            lead_program=73,
            drift=-0.03,
            seed=10,
            start_beats=1.3,
        ),
    ),
    "70-76 slow": (
        RealisticSong(
            70,
            34,
            root=48,
            mode="minor",
            chords_program=89,
            bass_program=32,
            lead_program=68,
            groove="half",
            seed=11,
        ),
        RealisticSong(
            76,
            30,
            root=50,
            mode="minor",
            chords_program=0,
            bass_program=32,
            lead_program=73,
            groove="half",
            seed=12,
            start_beats=0.55,
        ),
    ),
    "128-150 drive": (
        RealisticSong(
            128,
            30,
            root=57,
            mode="minor",
            chords_program=30,
            bass_program=34,
            lead_program=29,
            drift=0.02,
            seed=13,
        ),
        RealisticSong(
            150,
            26,
            root=59,
            mode="minor",
            chords_program=27,
            bass_program=33,
            lead_program=62,
            seed=14,
            start_beats=2.75,
        ),
    ),
    "84-120 past stretch": (
        RealisticSong(84, 30, root=55, mode="major", chords_program=0, lead_program=22, seed=15),
        RealisticSong(
            120,
            30,
            root=60,
            mode="major",
            chords_program=4,
            lead_program=65,
            groove="four",
            seed=16,
            start_beats=1.9,
        ),
    ),
}
