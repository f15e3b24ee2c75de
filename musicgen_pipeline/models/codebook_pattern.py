"""MusicGen's delay pattern: how K parallel codebooks become one autoregressive sequence.

EnCodec gives K codes per frame (4 for mono models, 8 for stereo: left/right interleaved). MusicGen
predicts all K codebooks of a sequence position at once, codebook k delayed by `delays[k]` positions,
so the coarse codebook of a frame is sampled before the finer ones that refine it (audiocraft's
`DelayedPatternProvider`). Position 0 holds the start token; `P` is the special (pad) id, which the
model also sees where a codebook has no frame yet or any more. Mono, K = 4, frames t0..t3:

    position   0    1    2    3    4    5    6    7
    cb 0       P   t0   t1   t2   t3    P    P    P      delay 0
    cb 1       P    P   t0   t1   t2   t3    P    P      delay 1
    cb 2       P    P    P   t0   t1   t2   t3    P      delay 2
    cb 3       P    P    P    P   t0   t1   t2   t3      delay 3

Stereo (K = 8: L0 R0 L1 R1 ...): the two channels of a codebook level share a delay,
`delays = 0 0 1 1 2 2 3 3`. A sequence of `frames` frames therefore spans
`frames + max_delay + 1` positions, and frame t of codebook k sits at position `1 + t + delays[k]`.

A continued window starts with `prompt` frames already known: they are written into the pattern
before sampling, and sampling at position s only fills the codebooks whose frame `s - 1 - delay` is
one of the new frames (`fresh`); the others keep their given code or P.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DelayPattern:
    """The per-codebook delays of a model and the moves between frames and sequence positions."""

    delays: tuple[int, ...]

    @classmethod
    def for_codebooks(cls, num_codebooks: int, channels: int) -> DelayPattern:
        """MusicGen's pattern: codebook level k delayed by k (stereo: both channels of a level)."""
        if channels not in (1, 2) or num_codebooks % channels:
            raise ValueError(f"{num_codebooks} codebooks do not split into {channels} channel(s)")
        return cls(tuple(k // channels for k in range(num_codebooks)))

    @property
    def num_codebooks(self) -> int:
        return len(self.delays)

    @property
    def max_delay(self) -> int:
        return max(self.delays)

    def length(self, frames: int) -> int:
        """Sequence positions (start token included) that hold `frames` frames of every codebook."""
        return frames + self.max_delay + 1

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor(self.delays, dtype=torch.long, device=device)

    def build(
        self, rows: int, frames: int, pad_id: int, prompt: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        """The delayed sequence (rows, K, length(frames)) filled with P, the prompt frames
        (rows, K, p) written in at their delayed positions."""
        seq = torch.full((rows, self.num_codebooks, self.length(frames)), pad_id, dtype=torch.long,
                         device=device)  # fmt: skip
        if prompt is not None:
            p = prompt.shape[2]
            for cb, d in enumerate(self.delays):
                seq[:, cb, 1 + d : 1 + d + p] = prompt[:, cb]
        return seq

    def frames_at(self, position: int, delays: torch.Tensor) -> torch.Tensor:
        """Frame index (K,) each codebook holds at sequence `position` (negative or past the end: P)."""
        return position - 1 - delays

    def revert(self, seq: torch.Tensor, frames: int) -> torch.Tensor:
        """Undo the delays: (rows, K, length) -> the first `frames` frames (rows, K, frames)."""
        out = torch.empty((seq.shape[0], self.num_codebooks, frames), dtype=seq.dtype, device=seq.device)
        for cb, d in enumerate(self.delays):
            out[:, cb] = seq[:, cb, 1 + d : 1 + d + frames]
        return out
