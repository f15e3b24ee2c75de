"""The phase error across a seam against the score's own beats: ground truth for `realistic_seams.py`.

The realistic clips are rendered from MIDI the project writes, so each clip's beats are known exactly
(`RealisticSong.beat_times`: the score's quarter notes, without the performers' timing jitter). A
join plays the first clip unstretched and the second stretched by the rate its report gives
(`segments[i].stretch_rate`), each shifted in time by the plan. Where a side was stretched evenly its
score beats land in the joined track at `lag + t / rate`: the rate is the report's, the lag is found
by cross-correlating the side's 1 ms attack envelope (above 800 Hz) with the joined track's over the
6 s next to the overlap (sub-ms, parabolic peak). Each side's score beats then give a line; the phase
error is the difference of the two lines at the overlap's centre, in beats of the score (the felt
beat), folded into [0, 0.5].

Independent of every tracker: no beat is detected, only where each clip's sound sits in the joined
track. Not measured (None) where a side was stretched along a time map (its aligned duration is not
its duration / rate): the map bends the beats, and the report does not carry it.

Checked by joining a clip to itself with a known delay (`python benchmarks/seam_truth.py`): 0 and 20 ms
read within 3 ms at rates 0.86-1.12 (exact at 1.0; rubberband's time ratio is a few 0.01 % off the rate
it was given, and each side's line carries that 3.5 s to the overlap's centre): 0.005 beat at 128 BPM.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicgen_pipeline.audio.io import Audio, resample  # noqa: E402
from musicgen_pipeline.audio.rhythm import ANALYSIS_RATE, attack_envelope  # noqa: E402

FPS = ANALYSIS_RATE / (ANALYSIS_RATE // 1000)  # `rhythm.attack_envelope`'s frames per second (~1 ms)
SIDE_SECONDS = 6.0
SEARCH_SECONDS = 0.3
TIME_MAP_TOLERANCE = 0.005  # s: |aligned duration - duration / rate| beyond this = stretched along a map


def rises(audio: Audio) -> np.ndarray:
    """Per ~1 ms frame from the audio's start, the rise (dB, floored at 0) of the 2 ms log energy above
    800 Hz (`rhythm.attack_envelope`, its leading pad dropped so frame k is at k / `FPS` s)."""
    y = (resample(audio, ANALYSIS_RATE) if audio.sample_rate != ANALYSIS_RATE else audio).mono()
    rise, _, pad = attack_envelope(y)
    return np.maximum(rise[pad:], 0.0)


def find_lag(
    out_env: np.ndarray, raw_env: np.ndarray, t0: float, t1: float, rate: float, guess: float
) -> float:
    """The lag (s) that puts raw time x at joined time lag + x / rate over the joined window [t0, t1),
    searched within +-`SEARCH_SECONDS` of `guess`."""
    a, b = int(t0 * FPS), int(t1 * FPS)
    chunk = out_env[a:b] - out_env[a:b].mean()
    m = int(SEARCH_SECONDS * FPS)
    u = a / FPS + (np.arange(chunk.size + 2 * m) - m) / FPS  # joined times at lag = guess
    raw_t = np.arange(raw_env.size) / FPS
    shifted = np.interp(rate * (u - guess), raw_t, raw_env, left=0.0, right=0.0)
    scores = np.correlate(shifted - shifted.mean(), chunk, mode="valid")
    k = int(np.argmax(scores))
    dk = 0.0
    if 0 < k < scores.size - 1:
        y0, y1, y2 = scores[k - 1 : k + 2]
        den = y0 - 2 * y1 + y2
        dk = 0.5 * (y0 - y2) / den if den != 0 else 0.0
    # joined(t) ~ raw(rate * (t - guess + (k - m) / FPS)): the lag is guess - (k - m) / FPS
    return guess - (k + dk - m) / FPS


def _line(beats: np.ndarray) -> tuple[float, float] | None:
    if beats.size < 4:
        return None
    period = float(np.median(np.diff(beats)))
    index = np.round((beats - beats[0]) / period)
    slope, intercept = np.polyfit(index, beats, 1)
    return float(intercept), float(slope)


def truth_phase(
    joined: Audio,
    report: dict,
    clips: tuple[Audio, Audio],
    score_beats: tuple[np.ndarray, np.ndarray],
) -> float | None:
    """The phase error (score beats) of the first seam of `joined` (the `report` of joining `clips`,
    whose score beats are `score_beats`, seconds from each clip's start); None where a side was
    stretched along a time map or has too few beats next to the overlap."""
    t = report["transitions"][0]
    s0 = float(t["overlap_start_time"])
    s1 = s0 + float(t["overlap_seconds"])
    sr = int(report["sample_rate"])
    out_env = rises(joined)
    lines = []
    for side, (segment, clip, beats) in enumerate(
        zip(report["segments"][:2], clips, score_beats, strict=True)
    ):
        rate = float(segment["stretch_rate"])
        if abs(float(segment["aligned_duration"]) - float(segment["duration"]) / rate) > TIME_MAP_TOLERANCE:
            return None
        if side == 0:
            t0, t1, guess = s0 - SIDE_SECONDS, s0, 0.0
        else:
            t0, t1 = s1, s1 + SIDE_SECONDS
            guess = s0 - t.get("plan", {}).get("next_start", 0) / sr
        lag = find_lag(out_env, rises(clip), t0, t1, rate, guess)
        mapped = lag + np.asarray(beats) / rate
        line = _line(mapped[(mapped >= t0) & (mapped < t1)])
        if line is None:
            return None
        lines.append(line)
    centre = (s0 + s1) / 2
    (c0, p0), (c1, p1) = lines
    return float(abs(((centre - c1) / p1 - (centre - c0) / p0 + 0.5) % 1.0 - 0.5))


def _self_check() -> int:
    """A realistic clip joined to itself with a known delay: the truth must read the delay."""
    import tempfile

    from musicgen_pipeline.audio.rhythm import stretch
    from musicgen_pipeline_tests.realistic_music import PAIRS, render_clip

    song = PAIRS["128-150 drive"][1]
    clip = render_clip(song, Path(tempfile.gettempdir()) / "musicgen-realistic-clips")
    sr = clip.sample_rate
    worst = 0.0
    for rate in (0.86, 1.0, 1.12):
        stretched = stretch(clip, rate)
        for delay in (0.0, 0.02):
            cut, s0 = 14 * sr, 13.0
            # The first side plays the stretched clip up to 14 s, the second the same stretched clip from
            # 14 s - delay on: its beats come `delay` late.
            joined = Audio(
                np.concatenate(
                    [stretched.samples[:, :cut], stretched.samples[:, cut - round(delay * sr) :]], axis=1
                ),
                sr,
            )
            report = {
                "sample_rate": sr,
                "segments": [
                    {
                        "duration": clip.duration,
                        "stretch_rate": rate,
                        "aligned_duration": clip.duration / rate,
                    }
                ]
                * 2,
                "transitions": [
                    {
                        "overlap_start_time": s0,
                        "overlap_seconds": 1.0,
                        "plan": {"next_start": round((s0 - delay) * sr)},
                    }
                ],
            }
            beats = song.beat_times()
            phase = truth_phase(joined, report, (clip, clip), (beats, beats))
            period = 60.0 / (song.bpm * rate)
            error = abs((phase or 0.0) * period - delay)
            worst = max(worst, error)
            print(
                f"rate {rate:.2f} delay {1000 * delay:4.1f} ms: reads {1000 * (phase or 0.0) * period:5.2f} ms"
            )
    print(f"worst error {1000 * worst:.2f} ms")
    return 0 if worst < 0.003 else 1


if __name__ == "__main__":
    sys.exit(_self_check())
