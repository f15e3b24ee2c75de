"""Seam thresholds come from settings at the pipeline's edge and are passed into the audio core."""

from __future__ import annotations

import pytest

from musicgen_pipeline.quality import quality_thresholds
from musicgen_pipeline.settings import get_settings


def test_thresholds_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFCC_SIMILARITY_MIN", "0.8")
    monkeypatch.setenv("ENERGY_RATIO_MAX", "1.5")
    monkeypatch.setenv("PHASE_ERROR_MAX", "0.07")
    t = quality_thresholds(get_settings())
    assert t.mfcc_similarity_min == 0.8 and t.energy_ratio_max == 1.5
    assert t.spectral_flux_max == 100.0 and t.chroma_correlation_min == 0.5
    assert t.phase_error_max == 0.07 and t.inter_beat_deviation_max == 0.07


def test_a_rhythm_threshold_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE_ERROR_MAX", "0.7")
    with pytest.raises(Exception, match="PHASE_ERROR_MAX"):
        get_settings()
