"""Dagster resources: the run's configuration (`SettingsResource`) and the models (loaded once per
process, lazily).

`SettingsResource` is the one place a run reads its configuration: when the run's resources are set
up it resolves the settings (environment, see `settings.py`) once, with any field set in the run
config (the UI's launchpad shows them all) taking precedence over the environment; assets, sensors
and the schedule receive `settings.resolved` and pass values down. Every field defaults to None,
which means "from the environment variable named in its description"; a deployment may also set a
field to ``dg.EnvVar("NAME")`` or a literal. Fields do not default to ``dg.EnvVar(...)``: in Dagster
1.13.27 a field defaulting to ``dg.EnvVar("NAME")`` fails the run's config when NAME is unset ("You have
attempted to fetch the environment variable ... which is not set"), yet every setting is optional with
its default in `settings.py`; a test (pipeline/test_settings_resource.py) says when that changes.

Models are cached at module level keyed by (model id, device, dtype), so every step and every
partition executed in one process share one loaded model; `load_counts()` says how many times each
kind was really loaded (a test proves a 3-scene run loads MusicGen once). Imports of the model code
happen on first use, so importing the code location (webserver, sensors) never imports torch.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from musicgen_pipeline.audio.stems import StemSplitter
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.settings import ENV_NAMES, Settings, get_settings

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str, str], Any] = {}
_LOAD_COUNTS: Counter[str] = Counter()
_LOAD_SECONDS: dict[tuple[str, str, str, str], float] = {}


def load_counts() -> dict[str, int]:
    """How many times each model kind was loaded in this process (``musicgen``, ``demucs``)."""
    return dict(_LOAD_COUNTS)


def clear_model_cache() -> None:
    """Forget loaded models (tests; frees memory)."""
    with _LOCK:
        _MODELS.clear()
        _LOAD_COUNTS.clear()
        _LOAD_SECONDS.clear()


def _cached(kind: str, model_id: str, device: str, dtype: str, load: Any) -> tuple[Any, float]:
    key = (kind, model_id, device, dtype)
    with _LOCK:
        if key not in _MODELS:
            start = time.perf_counter()
            _MODELS[key] = load()
            _LOAD_SECONDS[key] = time.perf_counter() - start
            _LOAD_COUNTS[kind] += 1
        return _MODELS[key], _LOAD_SECONDS[key]


def _field(name: str) -> Any:
    return Field(default=None, description=f"{ENV_NAMES[name]} (None: from the environment)")


class SettingsResource(dg.ConfigurableResource):
    """The run's configuration, resolved once per run (at resource set-up) and passed down as values."""

    data_dir: str | None = _field("data_dir")
    musicgen_model: str | None = _field("musicgen_model")
    demucs_model: str | None = _field("demucs_model")
    device: str | None = _field("device")
    dtype: str | None = _field("dtype")
    musicgen_compile: bool | None = _field("musicgen_compile")
    musicgen_max_batch: int | None = _field("musicgen_max_batch")
    top_k: int | None = _field("top_k")
    top_p: float | None = _field("top_p")
    temperature: float | None = _field("temperature")
    guidance_scale: float | None = _field("guidance_scale")
    context_seconds: float | None = _field("context_seconds")
    target_lufs: float | None = _field("target_lufs")
    true_peak_dbtp: float | None = _field("true_peak_dbtp")
    demucs_segment: float | None = _field("demucs_segment")
    demucs_overlap: float | None = _field("demucs_overlap")
    demucs_shifts: int | None = _field("demucs_shifts")
    mfcc_similarity_min: float | None = _field("mfcc_similarity_min")
    spectral_flux_max: float | None = _field("spectral_flux_max")
    chroma_correlation_min: float | None = _field("chroma_correlation_min")
    energy_ratio_max: float | None = _field("energy_ratio_max")
    inter_beat_deviation_max: float | None = _field("inter_beat_deviation_max")
    phase_error_max: float | None = _field("phase_error_max")
    max_tempo_stretch: float | None = _field("max_tempo_stretch")
    use_stem_aware_crossfade: bool | None = _field("use_stem_aware_crossfade")
    stem_source: str | None = _field("stem_source")
    use_quality_loop: bool | None = _field("use_quality_loop")
    max_regen_attempts: int | None = _field("max_regen_attempts")
    sensor_max_batch: int | None = _field("sensor_max_batch")
    sensor_settle_seconds: float | None = _field("sensor_settle_seconds")
    min_free_disk_mb: float | None = _field("min_free_disk_mb")
    retention_upload_hours: float | None = _field("retention_upload_hours")
    retention_output_days: float | None = _field("retention_output_days")
    listen_url: str | None = _field("listen_url")

    _resolved: Settings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._resolved = self.resolve()

    def resolve(self) -> Settings:
        """The environment's settings with this resource's set fields on top (validated alike)."""
        environ = dict(os.environ)
        for name, env_name in ENV_NAMES.items():
            value = getattr(self, name, None)
            if value is not None:
                environ[env_name] = str(value).lower() if isinstance(value, bool) else str(value)
        return get_settings(environ)

    @property
    def resolved(self) -> Settings:
        """The settings of this run (resolved at set-up; resolved now outside a run)."""
        if self._resolved is None:
            self._resolved = self.resolve()
        return self._resolved

    @property
    def store(self) -> PartitionStore:
        return PartitionStore(self.resolved.outputs_dir)


def catalog_cron() -> str:
    """The schedule's cron, needed when the code location loads (before any run or resource exists)."""
    return get_settings().catalog_cron


def retention_cron() -> str:
    """The cleanup schedule's cron (read when the code location loads, as `catalog_cron`)."""
    return get_settings().retention_cron


class DataVolumeIOManager(dg.ConfigurableIOManagerFactory):
    """Asset outputs pickled under ``$MUSICGEN_DATA/dagster_storage/<asset>/<partition>``.

    Dagster's default puts them under ``$DAGSTER_HOME/storage``, local to the process (container, pod)
    that ran the step, so a re-execution from failure elsewhere could not load the upstream outputs of the
    failed run. On the data volume (``MUSICGEN_DATA``, shared by the code server and every run worker in
    each deployment shape), any process can re-execute any step. Same pickled files as
    `dg.FilesystemIOManager`.
    """

    settings: SettingsResource

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

        return PickledObjectFilesystemIOManager(base_dir=str(self.settings.resolved.asset_storage_dir))


class MusicGenResource(dg.ConfigurableResource):
    """MusicGen, loaded on first use and shared by every step of the process.

    Empty fields fall back to the run's settings (MUSICGEN_MODEL, MUSICGEN_DEVICE, MUSICGEN_DTYPE); a
    request's ``model`` overrides the model id for that request.
    """

    model_id: str = ""
    device: str = ""
    dtype: str = ""

    def resolved(self, settings: Settings, model_id: str | None = None) -> tuple[str, str, str]:
        return (
            model_id or self.model_id or settings.musicgen_model,
            self.device or settings.device,
            self.dtype or settings.dtype,
        )

    def get(self, settings: Settings, model_id: str | None = None) -> tuple[Any, float]:
        """(model, seconds its load took). The load happens once per (model, device, dtype) per process."""
        from musicgen_pipeline.models.loaders import get_musicgen

        mid, device, dtype = self.resolved(settings, model_id)
        compile_step = None if settings.musicgen_compile else False
        load = lambda: get_musicgen(mid, device=device, dtype=dtype, compile_step=compile_step)  # noqa: E731
        return _cached("musicgen", mid, device, dtype, load)


class StemSplitterResource(dg.ConfigurableResource):
    """The stem splitter used at transitions: Demucs (``STEM_SOURCE=demucs``) or the DSP splitter.

    Empty fields fall back to the run's settings (STEM_SOURCE, DEMUCS_MODEL).
    """

    source: str = ""
    demucs_model: str = ""

    def resolved(self, settings: Settings) -> tuple[str, str]:
        return (self.source or settings.stem_source).lower(), self.demucs_model or settings.demucs_model

    def uses_gpu(self, settings: Settings) -> bool:
        return self.resolved(settings)[0] == "demucs"

    def get(self, settings: Settings) -> tuple[StemSplitter, float]:
        source, model = self.resolved(settings)
        if source == "dsp":
            from musicgen_pipeline.audio.stems import DspStemSplitter

            return _cached("dsp", "dsp", "cpu", "float32", DspStemSplitter)
        from musicgen_pipeline.model_options import separator_options
        from musicgen_pipeline.models.demucs import get_separator

        options = separator_options(settings, model)
        return _cached("demucs", model, "auto", "auto", lambda: get_separator(**options))
