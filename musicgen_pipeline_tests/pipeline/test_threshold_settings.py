"""Seam thresholds come from settings at the pipeline's edge and are passed into the audio core."""

from __future__ import annotations

import pytest

from musicgen_pipeline.quality import quality_thresholds
from musicgen_pipeline.settings import get_settings


def test_thresholds_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFCC_SIMILARITY_MIN", "0.8")
    monkeypatch.setenv("ENERGY_RATIO_MAX", "1.5")
    t = quality_thresholds(get_settings())
    assert t.mfcc_similarity_min == 0.8 and t.energy_ratio_max == 1.5
    assert t.spectral_flux_max == 100.0 and t.chroma_correlation_min == 0.5
