"""Demucs source separation behind the `StemSplitter` interface, whole-segment or windowed.

- `get_separator(model)` — cached per process; `model` is a pretrained name (`htdemucs`,
  `htdemucs_ft`, `mdx_extra`, ...), a local folder of Demucs model files (`<sig>.th`, optional bag
  `.yaml`; the folder's single model or a `name` inside it as `folder:name`), or `tiny-random`.
- `DemucsSeparator.split(samples, rate)` — the four stems (drums, bass, other, vocals), each the mix's
  shape and rate, `other` the residual so they sum to the mix.
- `DemucsSeparator.separate(audio, stems=4|2, residual_other=True)` — named `Audio` stems; two-stem
  mode returns vocals + accompaniment (= mix - vocals).
- `DemucsSeparator.split_window(samples, rate, start, stop, mode=...)` — stems of [start, stop) only:
  `"exact"` runs just the Demucs chunks (same grid, weights, padding and normalisation as the
  whole-segment pass) that overlap the window, so the result equals the whole-segment stems there up
  to float rounding; `"centered"` runs one chunk centred on the window (real audio as context on
  both sides, the model's full segment), the fastest estimate for a crossfade.

Audio is resampled to the model's rate (44.1 kHz) and back with soxr; normalisation is Demucs' own
(zero-mean, unit-std of the mono mix). `shifts` (random time shifts) default to 0 so separation is
deterministic.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import torch

from musicgen_pipeline.audio.io import Audio, check_audio, resample
from musicgen_pipeline.audio.stems import STEMS_2, STEMS_4, Stems
from musicgen_pipeline.errors import InputError, ModelUnavailableError
from musicgen_pipeline.models.device import resolve_device
from musicgen_pipeline.models.ids import TINY_DEMUCS_ID
from musicgen_pipeline.models.tiny import tiny_htdemucs

DEMUCS_HOST = ("dl.fbaipublicfiles.com", 443)
WINDOW_MODES = ("exact", "centered")


def _unavailable(name: str, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"Demucs model {name!r} is not available ({reason}). Point DEMUCS_MODEL at a local folder of "
        "Demucs model files (<signature>.th, as `demucs --repo` uses), or use DEMUCS_MODEL=tiny-random "
        "for an offline model with random weights"
    )


def _reachable(host: tuple[str, int], timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def _remote_cached(name: str) -> bool:
    """Whether every checkpoint of a pretrained name is already in torch hub's cache (no network needed)."""
    import yaml
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files

    files = _parse_remote_files(REMOTE_ROOT / "files.txt")
    bag = REMOTE_ROOT / f"{name}.yaml"
    sigs = yaml.safe_load(bag.read_text())["models"] if bag.exists() else [name]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return all(sig in files and (cache / files[sig].rsplit("/", 1)[1]).is_file() for sig in sigs)


def _hf_cached(name: str) -> bool:
    try:
        from huggingface_hub import scan_cache_dir

        return any(name in repo.repo_id for repo in scan_cache_dir().repos)
    except Exception as exc:  # no readable Hugging Face cache: not cached; the reason goes to the log
        logging.getLogger(__name__).warning("cannot scan the Hugging Face cache for %r: %s", name, exc)
        return False


def load_demucs_model(name: str) -> torch.nn.Module:
    """The raw Demucs model (or bag of models) for a name, folder or `tiny-random`."""
    if name == TINY_DEMUCS_ID:
        return tiny_htdemucs()
    from demucs.pretrained import get_model

    path = Path(name.split(":", 1)[0]).expanduser()
    try:
        if path.is_dir():
            sub = name.split(":", 1)[1] if ":" in name else None
            if sub is None:
                found = sorted(
                    {p.stem.split("-")[0] for p in path.glob("*.th")} | {p.stem for p in path.glob("*.yaml")}
                )
                if len(found) != 1:
                    raise _unavailable(
                        name, f"{path} holds {len(found)} models {found}; name one as FOLDER:NAME"
                    )
                sub = found[0]
            return get_model(sub, repo=path).eval()
        if name.startswith((".", "/", "~")):
            raise _unavailable(name, f"{path} is not a folder")
        if not (_remote_cached(name) or _hf_cached(name) or _reachable(DEMUCS_HOST)):
            raise _unavailable(name, "not in the local cache and the model server is unreachable")
        return get_model(name).eval()
    except ModelUnavailableError:
        raise
    except SystemExit as exc:  # demucs' `fatal()` exits the process on a bad repo
        raise _unavailable(name, f"demucs refused it ({exc})") from None
    except Exception as exc:
        raise _unavailable(
            name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None


class DemucsSeparator:
    """A loaded Demucs model implementing `musicgen_pipeline.audio.stems.StemSplitter`."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        name: str,
        device: torch.device,
        segment: float | None = None,
        overlap: float = 0.25,
        shifts: int = 0,
        load_seconds: float = 0.0,
    ) -> None:
        self.model = model.to(device).eval()
        self.name = f"demucs:{name}"
        self.model_name = name
        self.device = device
        self.sources = list(model.sources)
        if sorted(self.sources) != sorted(STEMS_4):
            raise ModelUnavailableError(
                f"Demucs model {name!r} separates {self.sources}; the pipeline needs {list(STEMS_4)}"
            )
        self.sample_rate = int(model.samplerate)
        self.model_channels = int(model.audio_channels)
        self.segment = float(segment) if segment else float(self._sub_models()[0][0].segment)
        if not 0.0 <= overlap < 1.0:
            raise InputError(f"DEMUCS_OVERLAP={overlap} must be within [0, 1)")
        self.overlap = overlap
        self.shifts = shifts
        self.load_seconds = load_seconds
        self._lock = threading.Lock()

    def _sub_models(self) -> list[tuple[torch.nn.Module, list[float]]]:
        from demucs.apply import BagOfModels

        if isinstance(self.model, BagOfModels):
            return list(zip(self.model.models, self.model.weights, strict=True))
        return [(self.model, [1.0] * len(self.sources))]

    # --- StemSplitter --------------------------------------------------------------------------
    def split(self, samples: np.ndarray, sample_rate: int) -> Stems:
        """Four stems of the whole input, each (channels, frames) like `samples`; `other` is residual."""
        audio = check_audio(Audio(samples, sample_rate), "mix")
        mix, norm = self._prepare(audio)
        raw = self._apply(mix, 0, mix.shape[-1], mode="whole")
        return self._finish(raw, norm, audio, 0, audio.frames, 0)

    def split_window(
        self, samples: np.ndarray, sample_rate: int, start: int, stop: int, *, mode: str = "exact"
    ) -> Stems:
        """Stems of frames [start, stop) of `samples`, separating only what that window needs.

        `mode="exact"`: only the Demucs chunks overlapping the window, on the same chunk grid as
        `split`, so the stems equal `split(...)`'s over the window up to float rounding.
        `mode="centered"`: one model segment centred on the window with real audio around it (the
        window must fit in the segment minus 1 s); fastest, differs from `split` only by Demucs'
        chunk blending. `other` is the residual over the window in both modes.
        """
        if mode not in WINDOW_MODES:
            raise InputError(f"mode={mode!r} must be one of {WINDOW_MODES}")
        audio = check_audio(Audio(samples, sample_rate), "mix")
        if not 0 <= start < stop <= audio.frames:
            raise InputError(f"window [{start}, {stop}) is outside the mix's {audio.frames} frames")
        mix, norm = self._prepare(audio)
        ratio = self.sample_rate / sample_rate
        margin = round(0.5 * self.sample_rate) if sample_rate != self.sample_rate else 0
        a = max(0, math.floor(start * ratio) - margin)
        b = min(mix.shape[-1], math.ceil(stop * ratio) + margin)
        if sample_rate != self.sample_rate:
            step = self.sample_rate // math.gcd(self.sample_rate, sample_rate)
            a -= a % step  # a whole number of output samples from 0: the resampled grid lines up
        if mode == "centered" and (b - a) > int(self.segment * self.sample_rate) - self.sample_rate:
            mode = "exact"  # window too long for one segment: fall back to the chunk grid
        raw = self._apply(mix, a, b, mode=mode)
        return self._finish(raw, norm, audio, start, stop, a)

    # --- high level ----------------------------------------------------------------------------
    def separate(self, audio: Audio, stems: int = 4, residual_other: bool = True) -> dict[str, Audio]:
        """Named stems as `Audio` at the input's rate and shape: four (drums, bass, other, vocals) or
        two (vocals, accompaniment). With `residual_other` the four stems sum to the mix exactly;
        otherwise `other` is Demucs' own estimate."""
        if stems not in (2, 4):
            raise InputError(f"stems={stems} must be 4 or 2")
        out = self._separate_raw(audio, residual_other=residual_other or stems == 2)
        if stems == 2:
            vocals = out["vocals"]
            return {
                "vocals": Audio(vocals, audio.sample_rate),
                "accompaniment": Audio(audio.samples - vocals, audio.sample_rate),
            }
        return {name: Audio(out[name], audio.sample_rate) for name in STEMS_4}

    def _separate_raw(self, audio: Audio, *, residual_other: bool) -> Stems:
        audio = check_audio(audio, "mix")
        mix, norm = self._prepare(audio)
        raw = self._apply(mix, 0, mix.shape[-1], mode="whole")
        return self._finish(raw, norm, audio, 0, audio.frames, 0, residual_other=residual_other)

    # --- internals -----------------------------------------------------------------------------
    def _prepare(self, audio: Audio) -> tuple[torch.Tensor, tuple[float, float]]:
        at_rate = resample(audio, self.sample_rate).samples
        if at_rate.shape[0] != self.model_channels:
            if at_rate.shape[0] == 1:
                at_rate = np.repeat(at_rate, self.model_channels, axis=0)
            else:
                at_rate = (
                    at_rate[: self.model_channels]
                    if self.model_channels > 1
                    else at_rate.mean(0, keepdims=True)
                )
        mix = torch.from_numpy(np.ascontiguousarray(at_rate, dtype=np.float32))
        ref = mix.mean(0)
        mean, std = float(ref.mean()), float(ref.std())
        std = std if std > 1e-8 else 1.0
        return ((mix - mean) / std)[None], (mean, std)

    def _apply(self, mix: torch.Tensor, a: int, b: int, *, mode: str) -> torch.Tensor:
        """(1, sources, channels, b - a) estimates of the normalised mix over [a, b)."""
        from demucs.apply import TensorChunk, apply_model

        with self._lock, torch.inference_mode():
            if mode == "whole" or self.shifts:
                out = apply_model(
                    self.model, mix, shifts=self.shifts, split=True, overlap=self.overlap,
                    segment=self.segment, device=self.device,
                )  # fmt: skip
                return out[..., a:b]
            estimates = torch.zeros((1, len(self.sources), mix.shape[1], b - a))
            totals = [0.0] * len(self.sources)
            for sub, weights in self._sub_models():
                sub_out = self._apply_one(sub, mix, a, b, mode, TensorChunk, apply_model)
                for k, w in enumerate(weights):
                    sub_out[:, k] *= w
                    totals[k] += w
                estimates += sub_out
            for k in range(len(self.sources)):
                estimates[:, k] /= totals[k]
            return estimates

    def _apply_one(self, model, mix, a, b, mode, TensorChunk, apply_model) -> torch.Tensor:
        length = mix.shape[-1]
        segment_length = int(model.samplerate * self.segment)
        if mode == "centered":
            chunk = TensorChunk(mix, a, b - a)
            return apply_model(
                model, chunk, shifts=0, split=False, segment=self.segment, device=self.device
            ).cpu()
        # Same grid and triangular weights as demucs.apply.apply_model(split=True), restricted to [a, b).
        stride = int((1 - self.overlap) * segment_length)
        weight = torch.cat(
            [
                torch.arange(1, segment_length // 2 + 1),
                torch.arange(segment_length - segment_length // 2, 0, -1),
            ]
        ).float()
        weight = weight / weight.max()
        out = torch.zeros((1, len(self.sources), mix.shape[1], b - a))
        sum_weight = torch.zeros(b - a)
        for offset in range(0, length, stride):
            end = min(length, offset + segment_length)
            if end <= a or offset >= b:
                continue
            chunk = TensorChunk(mix, offset, segment_length)
            chunk_out = apply_model(
                model, chunk, shifts=0, split=False, segment=self.segment, device=self.device
            )
            lo, hi = max(a, offset), min(b, end)
            w = weight[lo - offset : hi - offset]
            out[..., lo - a : hi - a] += w * chunk_out[..., lo - offset : hi - offset].cpu()
            sum_weight[lo - a : hi - a] += w
        return out / sum_weight

    def _finish(
        self,
        raw: torch.Tensor,
        norm: tuple[float, float],
        audio: Audio,
        start: int,
        stop: int,
        a: int,
        *,
        residual_other: bool = True,
    ) -> Stems:
        mean, std = norm
        est = (raw[0] * std + mean).numpy()  # (sources, model_channels, b - a)
        ratio = audio.sample_rate / self.sample_rate
        first = round(a * ratio)  # output-rate index of est's first sample
        stems: Stems = {}
        mix = audio.samples[:, start:stop]
        for k, name in enumerate(self.sources):
            s = est[k]
            if audio.sample_rate != self.sample_rate:
                s = resample(Audio(s, self.sample_rate), audio.sample_rate).samples
            s = s[:, start - first : stop - first]
            if s.shape[1] < stop - start:
                s = np.pad(s, ((0, 0), (0, stop - start - s.shape[1])))
            if audio.channels != s.shape[0]:
                s = (
                    s.mean(0, keepdims=True)
                    if audio.channels == 1
                    else np.repeat(s[:1], audio.channels, axis=0)
                )
            stems[name] = np.ascontiguousarray(s, dtype=np.float32)
        if residual_other:
            stems["other"] = (mix - stems["drums"] - stems["bass"] - stems["vocals"]).astype(np.float32)
        return {name: stems[name] for name in STEMS_4}


_SEPARATORS: dict[tuple[str, str, float | None, float, int], DemucsSeparator] = {}
_SEPARATORS_LOCK = threading.Lock()


def load_separator(
    model: str,
    device: str = "auto",
    *,
    segment: float | None = None,
    overlap: float = 0.25,
    shifts: int = 0,
) -> DemucsSeparator:
    """Load without caching (see `get_separator`). `segment` None = the model's own chunk length."""
    dev = resolve_device(device)
    start = time.perf_counter()
    net = load_demucs_model(model)
    return DemucsSeparator(
        net, name=model, device=dev, segment=segment, overlap=overlap, shifts=shifts,
        load_seconds=time.perf_counter() - start,
    )  # fmt: skip


def get_separator(
    model: str,
    device: str = "auto",
    *,
    segment: float | None = None,
    overlap: float = 0.25,
    shifts: int = 0,
) -> DemucsSeparator:
    """The process-wide separator for these arguments, loaded on first use (the caller resolves
    DEMUCS_MODEL, MUSICGEN_DEVICE, DEMUCS_SEGMENT/OVERLAP/SHIFTS: `model_options.separator_options`)."""
    key = (model, device, segment, overlap, shifts)
    with _SEPARATORS_LOCK:
        if key not in _SEPARATORS:
            _SEPARATORS[key] = load_separator(model, device, segment=segment, overlap=overlap, shifts=shifts)
        return _SEPARATORS[key]


STEM_NAMES = {4: STEMS_4, 2: STEMS_2}
__all__ = ["STEM_NAMES", "DemucsSeparator", "get_separator", "load_demucs_model", "load_separator"]
