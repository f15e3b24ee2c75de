"""MusicGen text-to-music generation: rows of a batch, each independent and seeded.

Public interface (others build on it):

- `GenerationRow` — one track to make: prompt, seed, duration, optional previous result to continue,
  optional melody reference. Rows of one call may all differ (several requests in one bulk call).
- `GeneratedAudio` — one result: audio, its code frames (codebooks, frames), prompt, seed, seconds,
  batch, model.
- `MusicGen.generate_rows(rows, params=..., max_batch=...)` — one batched decode per step for all rows
  (in chunks of at most `max_batch` rows); `generate(prompts, duration, seeds=...)` is the common case
  of one duration and one melody for every row.
- Loading lives in `loaders` (`get_musicgen`), sampling settings in `params`, the delay pattern in
  `codebook_pattern`, long-form windows in `windows`, sampling in `sampling`, melody chroma in `melody`.

Row independence (the contract bulk rendering rests on): a row's codes and audio are bit-identical
whether it is generated alone or in any batch, with any other rows (other prompts, seeds, durations,
continuation contexts, melodies). How:
- every row has its own `torch.Generator` seeded with its seed, and draws from it only while it is
  itself sampling (a row that is done does not consume numbers while a longer neighbour goes on);
- a row's frames past its own end stay the pad id in the pattern, as when it runs alone;
- the text prompt is encoded row by row (no padding from neighbours into the encoder); the decoder's
  projections run on row blocks whose BLAS path does not depend on the row count (`decoding`);
- rows share a decoding pass only when their sequence positions match (same conditioning length;
  for MusicGen Melody, whose condition is a prefix of the sequence, the same prompt length too);
- every row is EnCodec-decoded on its own.

Long-form and continuation (see `windows`): a scene longer than the model window is generated window
by window at the token level; `continue_from` conditions the first window on the previous result's
last `context_seconds` of codes, which are not part of the new result (the echo is trimmed at the
token level).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musicgen_pipeline.audio.io import Audio, check_audio
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.models.codebook_pattern import DelayPattern
from musicgen_pipeline.models.decoding import FastDecoder
from musicgen_pipeline.models.melody import melody_chroma
from musicgen_pipeline.models.params import MAX_DURATION_SECONDS, GenerationParams
from musicgen_pipeline.models.sampling import sample_next
from musicgen_pipeline.models.windows import Window, plan_decode_chunks, plan_windows

ProgressFn = Callable[[float], None]


@dataclass(frozen=True)
class GeneratedAudio:
    """One generated track.

    `codes` (codebooks, frames) int64 are the EnCodec codes of exactly this audio (no conditioning
    frames); the tail of them is what a following scene continues from. `seconds` is the wall time of
    the batched call that produced it, shared by its `batch` rows.
    """

    audio: Audio
    codes: np.ndarray
    prompt: str
    seed: int
    seconds: float
    model_id: str
    batch: int = 1
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.audio.duration


@dataclass(frozen=True)
class GenerationRow:
    """One track of a batched call: `duration` seconds for `prompt` from `seed`, continuing the tail of
    `continue_from`'s codes when given, following `melody`'s chroma (Melody models) when given."""

    prompt: str
    seed: int
    duration: float
    continue_from: GeneratedAudio | None = None
    melody: Audio | None = None


TEXT_BUCKET = 64  # prompt tokens: cross-attention keys are padded to a multiple of this


def text_bucket(tokens: int) -> int:
    """The cross-attention length a prompt of `tokens` tokens is padded to, alone or in a batch.

    CPU attention kernels do not give bit-identical results for a different number of (masked) keys:
    at musicgen-small size a row's logits moved by ~1e-6 when a longer neighbour's prompt padded its
    keys, enough to flip a sampled code now and then and let the row diverge. With one padded length
    per bucket, and rows of different buckets in different passes, a row sees exactly the keys it sees
    alone. Prompts are short (REST and request limits: 500 characters), so nearly all share a bucket.
    """
    return max(1, -(-tokens // TEXT_BUCKET)) * TEXT_BUCKET


@dataclass
class _RowState:
    """A row while it is being sampled: its plan, generator, text and the codes kept so far."""

    index: int
    plan: list[Window]
    generator: torch.Generator
    text: torch.Tensor  # (1, S, D) encoded prompt
    melody: Audio | None
    history: torch.Tensor | None  # (K, <= context) last frames, what the next window continues
    kept: list[torch.Tensor] = field(default_factory=list)
    first_window: torch.Tensor | None = None


class MusicGen:
    """A loaded MusicGen / MusicGen Melody model with batched, seeded, long-form generation.

    Attributes: `model_id`, `device`, `dtype`, `sample_rate` (32000), `channels` (1 or 2),
    `frame_rate` (code frames per second, 50), `num_codebooks`, `pattern`, `max_delay`, `is_melody`,
    `load_seconds`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: object,
        *,
        model_id: str,
        device: torch.device,
        dtype: torch.dtype,
        load_seconds: float = 0.0,
        compile_step: bool | None = None,
    ) -> None:
        """`compile_step`: compile the decoding step (CUDA graphs); None = on CUDA only."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        self.load_seconds = load_seconds
        self.is_melody = model.config.model_type == "musicgen_melody"
        self.model.to(device)
        self.model.decoder.to(dtype)
        decoder_config = model.config.decoder
        self.num_codebooks = int(decoder_config.num_codebooks)
        self.channels = int(getattr(decoder_config, "audio_channels", 1))
        self.codebook_size = int(decoder_config.vocab_size)
        self.pad_id = int(model.generation_config.pad_token_id or decoder_config.pad_token_id)
        audio_config = model.config.audio_encoder
        self.sample_rate = int(audio_config.sampling_rate)
        self.hop_length = int(np.prod(audio_config.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop_length
        self.pattern = DelayPattern.for_codebooks(self.num_codebooks, self.channels)
        self.max_delay = self.pattern.max_delay
        self.fast = FastDecoder(model.decoder, static_shapes=device.type == "cuda")
        if compile_step is None:
            compile_step = device.type == "cuda"
        if compile_step:
            self.fast.compile()
        self._lock = threading.Lock()

    # --- public ------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[str],
        duration: float,
        *,
        seeds: Sequence[int],
        params: GenerationParams | None = None,
        continue_from: Sequence[GeneratedAudio | None] | None = None,
        melody: Audio | None = None,
        progress: ProgressFn | None = None,
    ) -> list[GeneratedAudio]:
        """Render each prompt for exactly `duration` seconds (one batched forward pass per step).

        `seeds[i]` seeds row i alone; `continue_from[i]` conditions row i on the tail of a previous
        result's codes; `melody` (Melody models only) applies to every row. See `generate_rows`.
        """
        return self.generate_rows(
            self._rows(prompts, duration, seeds, continue_from, melody), params=params, progress=progress
        )

    def generate_rows(
        self,
        rows: Sequence[GenerationRow],
        *,
        params: GenerationParams | None = None,
        max_batch: int | None = None,
        progress: ProgressFn | None = None,
    ) -> list[GeneratedAudio]:
        """Render every row (results in the order of `rows`), at most `max_batch` rows per batched call.

        Each row's result is bit-identical to `generate_rows([row])`. Rows are ordered so that rows
        that can share decoding passes are chunked together.
        """
        rows = list(rows)
        self._validate(rows)
        params = params or GenerationParams()
        chunks = self._chunks(rows, max_batch)
        results: list[GeneratedAudio | None] = [None] * len(rows)
        for number, members in enumerate(chunks):
            start = time.perf_counter()

            def chunk_progress(fraction: float, number: int = number) -> None:
                if progress is not None:
                    progress(min(1.0, (number + fraction) / len(chunks)))

            codes, _ = self._sample([rows[i] for i in members], params, chunk_progress)
            audios = [self.decode(c[None])[0] for c in codes]
            elapsed = time.perf_counter() - start
            for j, i in enumerate(members):
                row = rows[i]
                samples = round(row.duration * self.sample_rate)
                results[i] = GeneratedAudio(
                    audio=Audio(audios[j][:, :samples], self.sample_rate),
                    codes=codes[j].cpu().numpy().astype(np.int64),
                    prompt=row.prompt,
                    seed=int(row.seed),
                    seconds=elapsed,
                    model_id=self.model_id,
                    batch=len(members),
                )
        if progress is not None:
            progress(1.0)
        return [r for r in results if r is not None]

    def generate_codes(
        self,
        prompts: Sequence[str],
        duration: float,
        *,
        seeds: Sequence[int],
        params: GenerationParams | None = None,
        continue_from: Sequence[GeneratedAudio | None] | None = None,
        melody: Audio | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Codes only: (rows, codebooks, frames) of the new music, and per row the first window's full
        codes *including* its conditioning frames (what the decoder saw before the echo is trimmed)."""
        rows = self._rows(prompts, duration, seeds, continue_from, melody)
        self._validate(rows)
        codes, first = self._sample(rows, params or GenerationParams(), progress)
        if progress is not None:
            progress(1.0)
        return torch.stack(codes), first

    def decode(
        self, codes: torch.Tensor, *, chunk_frames: int = 1500, margin_frames: int = 100
    ) -> np.ndarray:
        """EnCodec-decode (rows, codebooks, frames) codes to float32 (rows, channels, frames*hop).

        Long sequences are decoded in `DecodeChunk`s with `margin_frames` of context on each side,
        joined by a short linear crossfade, so memory stays bounded for 10-minute scenes without an
        audible seam.
        """
        rows, _, frames = codes.shape
        hop = self.hop_length
        if frames <= chunk_frames + 2 * margin_frames:
            return self._decode_span(codes)
        out = np.zeros((rows, self.channels, frames * hop), dtype=np.float32)
        for chunk in plan_decode_chunks(frames, chunk_frames, margin_frames):
            audio = self._decode_span(codes[:, :, chunk.context_start : chunk.context_stop])
            ka, kb = chunk.write_start, chunk.write_stop
            seg = audio[:, :, (ka - chunk.context_start) * hop : (kb - chunk.context_start) * hop]
            t = np.arange(ka * hop, kb * hop, dtype=np.float64) + 0.5
            w = np.ones_like(t)
            span = 2 * chunk.fade * hop
            if chunk.fade_in:
                w *= np.clip((t - ka * hop) / span, 0.0, 1.0)
            if chunk.fade_out:
                w *= np.clip((kb * hop - t) / span, 0.0, 1.0)
            out[:, :, ka * hop : kb * hop] += seg * w.astype(np.float32)
        return out

    def frames_for(self, duration: float) -> int:
        """Code frames that cover `duration` seconds."""
        return math.ceil(round(duration * self.frame_rate, 6))

    # --- validation and batching ---------------------------------------------------------------
    @staticmethod
    def _rows(
        prompts: Sequence[str],
        duration: float,
        seeds: Sequence[int],
        continue_from: Sequence[GeneratedAudio | None] | None,
        melody: Audio | None,
    ) -> list[GenerationRow]:
        prompts = list(prompts)
        if not prompts:
            raise InputError("prompts: at least one prompt is required")
        if len(seeds) != len(prompts):
            raise InputError(f"seeds: got {len(seeds)} seeds for {len(prompts)} prompts (one per prompt)")
        if continue_from is not None and len(continue_from) != len(prompts):
            raise InputError(
                f"continue_from: got {len(continue_from)} entries for {len(prompts)} prompts (use None for none)"
            )
        conts = list(continue_from) if continue_from is not None else [None] * len(prompts)
        return [
            GenerationRow(prompt=p, seed=int(s), duration=duration, continue_from=c, melody=melody)
            for p, s, c in zip(prompts, seeds, conts, strict=True)
        ]

    def _validate(self, rows: list[GenerationRow]) -> None:
        if not rows:
            raise InputError("prompts: at least one prompt is required")
        for i, row in enumerate(rows):
            if not isinstance(row.prompt, str) or not row.prompt.strip():
                raise InputError("prompts: every prompt must be a non-empty string")
            duration = row.duration
            if not isinstance(duration, (int, float)) or not math.isfinite(duration):
                raise InputError(f"duration={duration!r} is not a number of seconds")
            if not 1.0 / self.frame_rate <= duration <= MAX_DURATION_SECONDS:
                raise InputError(
                    f"duration={duration} s is outside [{1.0 / self.frame_rate}, {MAX_DURATION_SECONDS}] seconds"
                )
            prev = row.continue_from
            if prev is not None and prev.codes.shape[0] != self.num_codebooks:
                raise InputError(
                    f"continue_from[{i}]: codes have {prev.codes.shape[0]} codebooks, model "
                    f"{self.model_id!r} uses {self.num_codebooks} (continue with the same model)"
                )
            if row.melody is not None:
                if not self.is_melody:
                    raise InputError(
                        f"melody: model {self.model_id!r} has no melody conditioning "
                        "(use facebook/musicgen-melody or tiny-random-melody)"
                    )
                check_audio(row.melody, "melody")

    def _chunks(self, rows: list[GenerationRow], max_batch: int | None) -> list[list[int]]:
        """Row indices per batched call: rows that share passes (same conditioning length, similar
        length) next to each other, then cut into chunks of at most `max_batch`."""
        if max_batch is not None and max_batch < 1:
            raise InputError(f"max_batch={max_batch} must be >= 1")
        if max_batch is None or len(rows) <= max_batch:
            return [list(range(len(rows)))]

        def key(i: int) -> tuple[bool, int]:
            prev = rows[i].continue_from
            continued = prev is not None and prev.codes.shape[1] > 0
            return (continued, -self.frames_for(rows[i].duration))

        order = sorted(range(len(rows)), key=key)
        return [order[a : a + max_batch] for a in range(0, len(order), max_batch)]

    # --- sampling ------------------------------------------------------------------------------
    def _sample(
        self, rows: list[GenerationRow], params: GenerationParams, progress: ProgressFn | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Codes (K, frames) of every row's new music and of its first window (with conditioning)."""
        context = round(params.context_seconds * self.frame_rate)
        window = round(params.window_seconds * self.frame_rate)
        trim = round(params.trim_seconds * self.frame_rate)
        cfg = params.guided
        with self._lock, torch.inference_mode():
            states: list[_RowState] = []
            for i, row in enumerate(rows):
                prev = row.continue_from
                tail = None
                if prev is not None and prev.codes.shape[1] > 0:
                    tail = torch.as_tensor(prev.codes[:, -context:], dtype=torch.long, device=self.device)
                prompt_frames = 0 if tail is None else int(tail.shape[1])
                states.append(
                    _RowState(
                        index=i,
                        plan=plan_windows(
                            self.frames_for(row.duration), prompt_frames, context, window, trim
                        ),
                        generator=torch.Generator(device=self.device).manual_seed(int(row.seed)),
                        text=self._text_state(row.prompt),
                        melody=row.melody,
                        history=tail,
                    )
                )
            passes = self._passes(states)
            work = sum(self._steps(members, j) for j, members in passes) or 1
            done = 0

            def report(steps: int) -> None:
                nonlocal done
                done += steps
                if progress is not None:
                    progress(min(1.0, done / work))

            for j, members in passes:
                self._run_pass(members, j, params, cfg, report)
            self.fast.release()
        codes = [torch.cat(s.kept, dim=1).cpu() for s in states]
        first = [s.first_window.cpu() if s.first_window is not None else torch.empty(0) for s in states]
        return codes, first

    def _passes(self, states: list[_RowState]) -> list[tuple[int, list[_RowState]]]:
        """Batched decoding passes, in order: window j of every row that has one, grouped by what
        must match for rows to share a pass (conditioning frames; Melody: prompt length too)."""
        passes: list[tuple[int, list[_RowState]]] = []
        depth = max(len(s.plan) for s in states)
        for j in range(depth):
            groups: dict[tuple[int, int], list[_RowState]] = {}
            for s in states:
                if j < len(s.plan):
                    n = int(s.text.shape[1])
                    text_length = n if self.is_melody else text_bucket(n)
                    groups.setdefault((s.plan[j].prompt_frames, text_length), []).append(s)
            passes.extend((j, members) for members in groups.values())
        return passes

    def _steps(self, members: list[_RowState], j: int) -> int:
        return max(s.plan[j].new_frames for s in members) + self.max_delay

    def _run_pass(
        self,
        members: list[_RowState],
        j: int,
        params: GenerationParams,
        cfg: bool,
        report: Callable[[int], None],
    ) -> None:
        windows = [s.plan[j] for s in members]
        p = windows[0].prompt_frames
        prompt = torch.stack([s.history[:, -p:] for s in members]) if p else None
        prefix = None
        if self.is_melody:
            prefix = self._melody_prefix(members, windows, cfg)
        else:
            self._set_text(members, cfg)
        codes = self._run_window(prompt, [w.frames for w in windows], params,
                                 [s.generator for s in members], prefix, cfg, report)  # fmt: skip
        for s, w, c in zip(members, windows, codes, strict=True):
            if j == 0:
                s.first_window = c
            new = c[:, w.kept]
            s.kept.append(new)
            joined = new if s.history is None else torch.cat([s.history, new], dim=1)
            s.history = joined[:, -max(round(params.context_seconds * self.frame_rate), 1) :]

    def _text_state(self, prompt: str) -> torch.Tensor:
        """The encoded prompt (1, S, D), projected to the decoder width; one prompt at a time so no
        neighbour's padding reaches the encoder."""
        enc = self.tokenizer([prompt], return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        states = self.model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        proj = getattr(self.model, "enc_to_dec_proj", None)
        return proj(states) if proj is not None else states

    def _set_text(self, members: list[_RowState], cfg: bool) -> None:
        """Cross-attention condition of a pass: prompts zero-padded to their shared `text_bucket`
        length, with a key mask (`_passes` puts only rows of one bucket in a pass)."""
        length = text_bucket(max(int(s.text.shape[1]) for s in members))
        dim = int(members[0].text.shape[2])
        text = torch.zeros((len(members), length, dim), dtype=members[0].text.dtype, device=self.device)
        mask = torch.zeros((len(members), length), dtype=torch.long, device=self.device)
        for r, s in enumerate(members):
            n = int(s.text.shape[1])
            text[r, :n] = s.text[0]
            mask[r, :n] = 1
        states = torch.cat([text, torch.zeros_like(text)], 0) if cfg else text
        cross_mask = torch.cat([mask, torch.zeros_like(mask)], 0) if cfg else mask
        self.fast.set_cross(states, cross_mask)

    def _melody_prefix(self, members: list[_RowState], windows: list[Window], cfg: bool) -> torch.Tensor:
        """MusicGen Melody condition per row: [projected chroma (chroma_length frames), projected text],
        the chroma taken where the row's window starts (HF's null melody for a row without one)."""
        config = self.model.config
        length = config.chroma_length
        proj = getattr(self.model, "audio_enc_to_dec_proj", None)

        def project(chroma: torch.Tensor) -> torch.Tensor:
            audio = proj(chroma[None]) if proj is not None else chroma[None]
            if audio.shape[1] < length:
                audio = audio.repeat(1, math.ceil(length / audio.shape[1]), 1)
            return audio[:, :length]

        null = torch.zeros((1, config.num_chroma), device=self.device)
        null[:, 0] = 1  # HF's null melody: the first chroma bin in every frame
        null_audio = project(null)
        cond, uncond = [], []
        for s, w in zip(members, windows, strict=True):
            chroma = null
            if s.melody is not None:
                start = w.condition_start_frame / self.frame_rate
                chroma = melody_chroma(s.melody, self.sample_rate, start, length).to(self.device)
            cond.append(torch.cat([project(chroma), s.text], dim=1))
            uncond.append(torch.cat([null_audio, torch.zeros_like(s.text)], dim=1))
        rows = cond + uncond if cfg else cond
        return torch.cat(rows, dim=0).to(self.fast.dtype)

    def _run_window(
        self,
        prompt: torch.Tensor | None,
        frames: list[int],
        params: GenerationParams,
        generators: list[torch.Generator],
        prefix: torch.Tensor | None,
        cfg: bool,
        report: Callable[[int], None],
    ) -> list[torch.Tensor]:
        """Sample one window per row, row r `frames[r]` frames long including the given `prompt`
        frames (rows, K, p); returns each row's codes (K, frames[r])."""
        rows = len(frames)
        p = 0 if prompt is None else prompt.shape[2]
        total = max(frames)
        delays = self.pattern.tensor(self.device)
        seq = self.pattern.build(rows, total, self.pad_id, prompt, self.device)
        length = seq.shape[2]
        ends = torch.tensor(frames, device=self.device)[:, None]  # (rows, 1): each row's own end
        lengths = [self.pattern.length(f) for f in frames]
        offset = 0 if prefix is None else prefix.shape[1]
        capacity = offset + length
        if self.fast.static_shapes:  # one cache shape for every window: the compiled step is reused
            capacity = offset + round(params.window_seconds * self.frame_rate) + self.max_delay + 1
        self.fast.allocate(rows * (2 if cfg else 1), capacity)
        ids = seq[:, :, : p + 1]
        embeds = self.fast.embed_codes(torch.cat([ids, ids]) if cfg else ids)
        if prefix is not None:
            embeds = torch.cat([prefix, embeds], dim=1)
        logits = self.fast.forward(embeds, 0)
        every = max(1, (length - p - 1) // 100)
        pending = 0
        for s in range(p + 1, length):
            active = [s < n for n in lengths]  # a finished row draws no more random numbers
            tokens = sample_next(logits, rows, params, generators, cfg, active=active)
            at = self.pattern.frames_at(s, delays)[None, :]
            fresh = (at >= p) & (at < ends)  # (rows, K): past a row's own end stays the pad id
            column = torch.where(fresh, tokens, seq[:, :, s])
            seq[:, :, s] = column
            if s < length - 1:
                logits = self.fast.step(torch.cat([column, column]) if cfg else column, offset + s)
            pending += 1
            if pending >= every:
                report(pending)
                pending = 0
        report(pending)
        return [self.pattern.revert(seq[r : r + 1], f)[0] for r, f in enumerate(frames)]

    def _decode_span(self, codes: torch.Tensor) -> np.ndarray:
        codes = codes.to(self.device)
        encodec = self.model.audio_encoder
        rows = codes.shape[0]
        with torch.inference_mode():
            if self.channels == 1:
                audio = encodec.decode(codes[None], audio_scales=[None] * rows).audio_values
            else:
                left = encodec.decode(codes[None, :, ::2], audio_scales=[None] * rows).audio_values
                right = encodec.decode(codes[None, :, 1::2], audio_scales=[None] * rows).audio_values
                audio = torch.cat([left, right], dim=1)
        return audio.float().cpu().numpy()
