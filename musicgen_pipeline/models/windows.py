"""Windows in time, as types instead of (start, stop) tuples (as demucs passes `TensorChunk`s).

- `Window`: one model window of a long-form scene (code frames at 50 Hz): conditioning frames, new
  frames sampled, those kept, and where they land in the output. `plan_windows` splits a scene.
- `DecodeChunk`: one EnCodec decoding chunk of a long code sequence: the frames it contributes, the
  margin it is decoded with, and the crossfades at its ends. `plan_decode_chunks` splits a sequence.

Long-form (DESIGN.md section 5, audiocraft's method): a scene longer than the model window (30 s) is
generated window by window at the token level. Each new window starts from the last `context` frames
already generated, appends only new frames; a window that is continued drops its last `trim` frames
(the noisy end of a full window), which the next window regenerates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    prompt_frames: int  # conditioning frames at the start of the window
    new_frames: int  # frames sampled in this window
    keep_frames: int  # of the new frames, those kept (the rest is the trimmed noisy end)
    start_frame: int  # output frame index of the window's first new frame

    @property
    def frames(self) -> int:
        """Frames the decoder sees in this window: conditioning + new."""
        return self.prompt_frames + self.new_frames

    @property
    def kept(self) -> slice:
        """Where the kept frames sit in the window's codes."""
        return slice(self.prompt_frames, self.prompt_frames + self.keep_frames)

    @property
    def condition_start_frame(self) -> int:
        """Output frame of the window's first (conditioning or new) frame, for time-aligned conditions."""
        return max(0, self.start_frame - self.prompt_frames)


def plan_windows(total_frames: int, prompt_frames: int, context: int, window: int, trim: int) -> list[Window]:
    """Split `total_frames` new frames into windows of at most `window` frames including context."""
    if total_frames <= 0:
        return []
    windows: list[Window] = []
    produced = 0
    p = prompt_frames
    while produced < total_frames:
        room = window - p
        remaining = total_frames - produced
        if remaining <= room:
            windows.append(Window(p, remaining, remaining, produced))
            produced = total_frames
        else:
            keep = max(1, room - trim)
            windows.append(Window(p, room, keep, produced))
            produced += keep
            p = context  # every later window has at least `context` frames behind it
        if p > window - 1:
            raise ValueError("context leaves no room in the window")
    return windows


@dataclass(frozen=True)
class DecodeChunk:
    """Frames [start, stop) of the output, decoded from [context_start, context_stop) (a margin each
    side covers the decoder's receptive field and lets its LSTM settle); `fade` frames each side of
    an inner boundary are crossfaded with the neighbour."""

    start: int
    stop: int
    context_start: int
    context_stop: int
    fade_in: bool
    fade_out: bool
    fade: int

    @property
    def write_start(self) -> int:
        """First output frame this chunk writes (its fade-in begins before `start`)."""
        return self.start - self.fade if self.fade_in else self.start

    @property
    def write_stop(self) -> int:
        return self.stop + self.fade if self.fade_out else self.stop


def plan_decode_chunks(frames: int, chunk: int, margin: int, fade: int = 5) -> list[DecodeChunk]:
    """Cover `frames` frames with chunks of `chunk` frames, each decoded with `margin` frames of context."""
    bounds = [*range(0, frames, chunk), frames]
    return [
        DecodeChunk(
            start=a,
            stop=b,
            context_start=max(0, a - margin),
            context_stop=min(frames, b + margin),
            fade_in=a > 0,
            fade_out=b < frames,
            fade=fade,
        )
        for a, b in itertools.pairwise(bounds)
    ]
