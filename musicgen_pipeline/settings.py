"""Every environment variable the project reads, with its default, in one place.

`get_settings()` reads the environment each time it is called (cheap), so tests and the sensor see
changes without restarting. It is called only at the entry points: CLI commands, the REST app and the
configuration resource of a Dagster run (`resources.SettingsResource`), which resolves it once per run
and passes the values down; `audio/` and `models/` never read it. A bad value is an `InputError` naming the variable, the value and what
it must be. Pure Python: importable from every layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from musicgen_pipeline.errors import InputError

# Rows per batched MusicGen call; see README "Bulk rendering" for how 8 was sized (24 GB GPU, musicgen-medium).
DEFAULT_MAX_BATCH = 8
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    return _env(name, environ) or default


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    raw = _env(name, environ)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InputError(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    raw = _env(name, environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise InputError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name}={value} is above the maximum {maximum}")
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    raw = _env(name, environ)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise InputError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name}={value} is above the maximum {maximum}")
    return value


@dataclass(frozen=True)
class Settings:
    # --- storage ---------------------------------------------------------------------------
    data_dir: Path  # MUSICGEN_DATA: inbox/, outputs/<partition>/, catalog.csv live here
    # --- models ----------------------------------------------------------------------------
    musicgen_model: str  # MUSICGEN_MODEL: hub id, local folder, or "tiny-random"
    demucs_model: str  # DEMUCS_MODEL: pretrained name, local folder, or "tiny-random"
    demucs_segment: float  # DEMUCS_SEGMENT: seconds per Demucs chunk (0 = the model's own)
    demucs_overlap: float  # DEMUCS_OVERLAP: overlap between Demucs chunks (fraction)
    demucs_shifts: int  # DEMUCS_SHIFTS: random-shift averaging passes (0 = deterministic)
    device: str  # MUSICGEN_DEVICE: auto | cuda | cuda:N | mps | cpu
    dtype: str  # MUSICGEN_DTYPE: auto (fp16 on GPU, fp32 on CPU) | float32 | float16 | bfloat16
    musicgen_compile: bool  # MUSICGEN_COMPILE: compile the decoding step on CUDA (CUDA graphs)
    musicgen_max_batch: int  # MUSICGEN_MAX_BATCH: rows per batched MusicGen call (bulk runs chunk above it)
    # --- generation ------------------------------------------------------------------------
    top_k: int  # MUSICGEN_TOP_K
    top_p: float  # MUSICGEN_TOP_P (0 = off)
    temperature: float  # MUSICGEN_TEMPERATURE
    guidance_scale: float  # MUSICGEN_GUIDANCE_SCALE (classifier-free guidance)
    context_seconds: float  # MUSICGEN_CONTEXT_SECONDS: tail kept as context for the next window
    # --- transitions -----------------------------------------------------------------------
    target_lufs: float  # TARGET_LUFS: integrated loudness of the final soundtrack
    true_peak_dbtp: float  # TRUE_PEAK_DBTP: true-peak ceiling
    mfcc_similarity_min: float  # MFCC_SIMILARITY_MIN
    spectral_flux_max: float  # SPECTRAL_FLUX_MAX
    chroma_correlation_min: float  # CHROMA_CORRELATION_MIN
    energy_ratio_max: float  # ENERGY_RATIO_MAX
    inter_beat_deviation_max: float  # INTER_BEAT_DEVIATION_MAX: rhythm across a seam (fraction of a beat)
    phase_error_max: float  # PHASE_ERROR_MAX: beat-phase error across a seam (beats)
    max_tempo_stretch: float  # MAX_TEMPO_STRETCH: largest tempo change (fraction); generation margin
    use_stem_aware_crossfade: bool  # USE_STEM_AWARE_CROSSFADE
    stem_source: str  # STEM_SOURCE: demucs | dsp
    # --- quality loop ----------------------------------------------------------------------
    use_quality_loop: bool  # USE_QUALITY_LOOP
    max_regen_attempts: int  # MAX_REGEN_ATTEMPTS
    # --- sensor / schedule -----------------------------------------------------------------
    sensor_max_batch: int  # SENSOR_MAX_BATCH: request files taken per sensor tick
    sensor_settle_seconds: float  # SENSOR_SETTLE_SECONDS: files modified more recently are left alone
    catalog_cron: str  # CATALOG_CRON: when the bulk catalogue schedule runs
    # --- disk ------------------------------------------------------------------------------
    min_free_disk_mb: float  # MIN_FREE_DISK_MB: a job does not start with less free space (0 = no check)
    retention_upload_hours: float  # RETENTION_UPLOAD_HOURS: uploads/fetched inputs of finished jobs kept
    retention_output_days: float  # RETENTION_OUTPUT_DAYS: outputs kept (0 = forever, the default)
    retention_cron: str  # RETENTION_CRON: when the cleanup runs
    # --- REST ------------------------------------------------------------------------------
    api_key: str  # API_KEY: empty = no auth
    max_upload_mb: float  # MAX_UPLOAD_MB
    api_generate_min_seconds: int  # API_GENERATE_MIN_SECONDS: /generate duration floor (contract: 10)
    api_generate_max_seconds: int  # API_GENERATE_MAX_SECONDS: /generate duration ceiling
    api_scene_min_seconds: int  # API_SCENE_MIN_SECONDS: /generate/soundtrack per-scene floor
    api_scene_max_seconds: int  # API_SCENE_MAX_SECONDS: /generate/soundtrack per-scene ceiling
    api_max_scenes: int  # API_MAX_SCENES: scenes per /generate/soundtrack request
    api_total_min_seconds: int  # API_TOTAL_MIN_SECONDS: soundtrack total floor
    api_total_max_seconds: int  # API_TOTAL_MAX_SECONDS: soundtrack total ceiling
    api_url_allowlist: str  # API_URL_ALLOWLIST: hosts/IPs/CIDRs audio_url may reach despite being private
    api_fetch_timeout_seconds: float  # API_FETCH_TIMEOUT_SECONDS: whole audio_url download + redirects
    api_max_audio_seconds: float  # API_MAX_AUDIO_SECONDS: longest uploaded or fetched audio (work bound)
    # --- listening pages -------------------------------------------------------------------
    listen_url: str  # LISTEN_URL: where `serve` is reached from a browser (links in Dagster metadata)
    listen_require_api_key: bool  # LISTEN_REQUIRE_API_KEY: the /listen pages need API_KEY too
    api_max_queued_jobs: int  # API_MAX_QUEUED_JOBS: jobs waiting for a run slot before 503 + Retry-After
    # --- run queue -------------------------------------------------------------------------
    run_queue: str  # RUN_QUEUE: auto (the daemon's queue while its daemon lives, else ours) | dagster | local
    dagster_code_location: str  # DAGSTER_CODE_LOCATION: this code location's name in the daemon's workspace
    run_worker_max_runs: int  # RUN_WORKER_MAX_RUNS: queued runs one warm worker process runs before exiting

    @property
    def min_free_bytes(self) -> int:
        return round(self.min_free_disk_mb * 1e6)

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.csv"

    @property
    def asset_storage_dir(self) -> Path:
        """Where the IO manager keeps asset outputs: on the data volume every process and pod shares."""
        return self.data_dir / "dagster_storage"

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Settings field -> the environment variable it is read from (the configuration resource overrides by it).
ENV_NAMES: dict[str, str] = {
    "data_dir": "MUSICGEN_DATA",
    "musicgen_model": "MUSICGEN_MODEL",
    "demucs_model": "DEMUCS_MODEL",
    "device": "MUSICGEN_DEVICE",
    "dtype": "MUSICGEN_DTYPE",
    "musicgen_compile": "MUSICGEN_COMPILE",
    "musicgen_max_batch": "MUSICGEN_MAX_BATCH",
    "top_k": "MUSICGEN_TOP_K",
    "top_p": "MUSICGEN_TOP_P",
    "temperature": "MUSICGEN_TEMPERATURE",
    "guidance_scale": "MUSICGEN_GUIDANCE_SCALE",
    "context_seconds": "MUSICGEN_CONTEXT_SECONDS",
    "target_lufs": "TARGET_LUFS",
    "true_peak_dbtp": "TRUE_PEAK_DBTP",
    "demucs_segment": "DEMUCS_SEGMENT",
    "demucs_overlap": "DEMUCS_OVERLAP",
    "demucs_shifts": "DEMUCS_SHIFTS",
    "mfcc_similarity_min": "MFCC_SIMILARITY_MIN",
    "spectral_flux_max": "SPECTRAL_FLUX_MAX",
    "chroma_correlation_min": "CHROMA_CORRELATION_MIN",
    "energy_ratio_max": "ENERGY_RATIO_MAX",
    "inter_beat_deviation_max": "INTER_BEAT_DEVIATION_MAX",
    "phase_error_max": "PHASE_ERROR_MAX",
    "max_tempo_stretch": "MAX_TEMPO_STRETCH",
    "use_stem_aware_crossfade": "USE_STEM_AWARE_CROSSFADE",
    "stem_source": "STEM_SOURCE",
    "use_quality_loop": "USE_QUALITY_LOOP",
    "max_regen_attempts": "MAX_REGEN_ATTEMPTS",
    "sensor_max_batch": "SENSOR_MAX_BATCH",
    "sensor_settle_seconds": "SENSOR_SETTLE_SECONDS",
    "catalog_cron": "CATALOG_CRON",
    "min_free_disk_mb": "MIN_FREE_DISK_MB",
    "retention_upload_hours": "RETENTION_UPLOAD_HOURS",
    "retention_output_days": "RETENTION_OUTPUT_DAYS",
    "listen_url": "LISTEN_URL",
}


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings read from `environ` (default: this process's environment), validated.

    Call it only at entry points (CLI commands, the REST app, the configuration resource of a run);
    everything below them receives the values.
    """
    # The audio core's defaults, written once there (the rhythm limits: how they were chosen).
    from musicgen_pipeline.audio.rhythm import MAX_STRETCH
    from musicgen_pipeline.audio.seam_rhythm import INTER_BEAT_DEVIATION_MAX, PHASE_ERROR_MAX

    e = os.environ if environ is None else environ
    stem_source = env_str("STEM_SOURCE", "demucs", e).lower()
    if stem_source not in {"demucs", "dsp"}:
        raise InputError(f"STEM_SOURCE={stem_source!r} must be 'demucs' or 'dsp'")
    run_queue = env_str("RUN_QUEUE", "auto", e).lower()
    if run_queue not in {"auto", "dagster", "local"}:
        raise InputError(f"RUN_QUEUE={run_queue!r} must be 'auto', 'dagster' or 'local'")
    return Settings(
        data_dir=Path(env_str("MUSICGEN_DATA", str(Path.cwd() / "data"), e)).expanduser().resolve(),
        musicgen_model=env_str("MUSICGEN_MODEL", "facebook/musicgen-small", e),
        demucs_model=env_str("DEMUCS_MODEL", "htdemucs", e),
        device=env_str("MUSICGEN_DEVICE", "auto", e).lower(),
        dtype=env_str("MUSICGEN_DTYPE", "auto", e).lower(),
        musicgen_compile=env_bool("MUSICGEN_COMPILE", True, e),
        musicgen_max_batch=env_int(
            "MUSICGEN_MAX_BATCH", DEFAULT_MAX_BATCH, minimum=1, maximum=256, environ=e
        ),
        top_k=env_int("MUSICGEN_TOP_K", 250, minimum=0, environ=e),
        top_p=env_float("MUSICGEN_TOP_P", 0.0, minimum=0.0, maximum=1.0, environ=e),
        temperature=env_float("MUSICGEN_TEMPERATURE", 1.0, minimum=1e-3, maximum=10.0, environ=e),
        guidance_scale=env_float("MUSICGEN_GUIDANCE_SCALE", 3.0, minimum=0.0, maximum=20.0, environ=e),
        context_seconds=env_float("MUSICGEN_CONTEXT_SECONDS", 10.0, minimum=1.0, maximum=25.0, environ=e),
        target_lufs=env_float("TARGET_LUFS", -14.0, minimum=-70.0, maximum=0.0, environ=e),
        true_peak_dbtp=env_float("TRUE_PEAK_DBTP", -1.0, minimum=-20.0, maximum=0.0, environ=e),
        demucs_segment=env_float("DEMUCS_SEGMENT", 0.0, minimum=0.0, maximum=60.0, environ=e),
        demucs_overlap=env_float("DEMUCS_OVERLAP", 0.25, minimum=0.0, maximum=0.9, environ=e),
        demucs_shifts=env_int("DEMUCS_SHIFTS", 0, minimum=0, maximum=20, environ=e),
        mfcc_similarity_min=env_float("MFCC_SIMILARITY_MIN", 0.7, environ=e),
        spectral_flux_max=env_float("SPECTRAL_FLUX_MAX", 100.0, environ=e),
        chroma_correlation_min=env_float("CHROMA_CORRELATION_MIN", 0.5, environ=e),
        energy_ratio_max=env_float("ENERGY_RATIO_MAX", 2.0, minimum=1.0, environ=e),
        inter_beat_deviation_max=env_float(
            "INTER_BEAT_DEVIATION_MAX", INTER_BEAT_DEVIATION_MAX, minimum=0.0, maximum=1.0, environ=e
        ),
        phase_error_max=env_float("PHASE_ERROR_MAX", PHASE_ERROR_MAX, minimum=0.0, maximum=0.5, environ=e),
        max_tempo_stretch=env_float("MAX_TEMPO_STRETCH", MAX_STRETCH, minimum=0.0, maximum=0.5, environ=e),
        use_stem_aware_crossfade=env_bool("USE_STEM_AWARE_CROSSFADE", True, e),
        stem_source=stem_source,
        use_quality_loop=env_bool("USE_QUALITY_LOOP", True, e),
        max_regen_attempts=env_int("MAX_REGEN_ATTEMPTS", 3, minimum=1, maximum=20, environ=e),
        sensor_max_batch=env_int("SENSOR_MAX_BATCH", 20, minimum=1, environ=e),
        sensor_settle_seconds=env_float("SENSOR_SETTLE_SECONDS", 5.0, minimum=0.0, environ=e),
        catalog_cron=env_str("CATALOG_CRON", "0 2 * * *", e),
        min_free_disk_mb=env_float("MIN_FREE_DISK_MB", 500.0, minimum=0.0, environ=e),
        retention_upload_hours=env_float("RETENTION_UPLOAD_HOURS", 24.0, minimum=0.0, environ=e),
        retention_output_days=env_float("RETENTION_OUTPUT_DAYS", 0.0, minimum=0.0, environ=e),
        retention_cron=env_str("RETENTION_CRON", "17 * * * *", e),
        api_key=e.get("API_KEY", ""),
        max_upload_mb=env_float("MAX_UPLOAD_MB", 200.0, minimum=0.001, environ=e),
        api_generate_min_seconds=env_int("API_GENERATE_MIN_SECONDS", 10, minimum=1, environ=e),
        api_generate_max_seconds=env_int("API_GENERATE_MAX_SECONDS", 600, minimum=1, environ=e),
        api_scene_min_seconds=env_int("API_SCENE_MIN_SECONDS", 1, minimum=1, environ=e),
        api_scene_max_seconds=env_int("API_SCENE_MAX_SECONDS", 600, minimum=1, environ=e),
        api_max_scenes=env_int("API_MAX_SCENES", 100, minimum=1, environ=e),
        api_total_min_seconds=env_int("API_TOTAL_MIN_SECONDS", 5, minimum=1, environ=e),
        api_total_max_seconds=env_int("API_TOTAL_MAX_SECONDS", 1800, minimum=1, environ=e),
        api_url_allowlist=env_str("API_URL_ALLOWLIST", "", e),
        api_fetch_timeout_seconds=env_float("API_FETCH_TIMEOUT_SECONDS", 60.0, minimum=0.1, environ=e),
        api_max_audio_seconds=env_float("API_MAX_AUDIO_SECONDS", 1800.0, minimum=1.0, environ=e),
        listen_url=env_str("LISTEN_URL", "http://127.0.0.1:8000", e).rstrip("/"),
        listen_require_api_key=env_bool("LISTEN_REQUIRE_API_KEY", False, e),
        api_max_queued_jobs=env_int("API_MAX_QUEUED_JOBS", 100, minimum=1, environ=e),
        run_queue=run_queue,
        dagster_code_location=env_str("DAGSTER_CODE_LOCATION", "musicgen_pipeline", e),
        run_worker_max_runs=env_int("RUN_WORKER_MAX_RUNS", 20, minimum=1, environ=e),
    )
