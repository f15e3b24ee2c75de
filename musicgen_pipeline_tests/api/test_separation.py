"""The `/separate` job's asset: stems as 16-bit 44.1 kHz stereo WAVs that sum back to the mix."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import soundfile as sf
import soxr

from musicgen_pipeline.audio.stems import DspStemSplitter
from musicgen_pipeline.defs.assets.separated_stems import separated_stems
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.instance import instance_yaml
from musicgen_pipeline.naming import SEPARATION_PARTITIONS_NAME
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.resources import SettingsResource, StemSplitterResource
from musicgen_pipeline.separation import separate_file
from musicgen_pipeline.settings import get_settings


def write_separation_request(key: str, input_path: Path, stems: int) -> Path:
    return PartitionStore(get_settings().outputs_dir).write_separation_request(key, input_path, stems)


def read_separation_summary(key: str) -> dict | None:
    return PartitionStore(get_settings().outputs_dir).read_separation_summary(key)


def _mix(path: Path, seconds: float = 2.0, rate: int = 32_000) -> np.ndarray:
    """Kick-like low thumps every 0.5 s, a bass line and a high melody: mono, quiet enough not to clip."""
    t = np.arange(round(seconds * rate)) / rate
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-30 * (t % 0.5))
    bass = 0.2 * np.sin(2 * np.pi * 110 * t)
    melody = 0.1 * np.sin(2 * np.pi * 880 * t)
    mix = (0.3 * kick + bass + melody).astype(np.float32)
    sf.write(str(path), mix, rate, subtype="PCM_16")
    return mix


def _read(path: str) -> tuple[np.ndarray, int, str]:
    info = sf.info(path)
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    return data, rate, info.subtype


def test_four_stems_sum_back_to_the_mix(tmp_path: Path) -> None:
    _mix(tmp_path / "mix.wav")
    summary = separate_file(tmp_path / "mix.wav", 4, tmp_path / "stems", DspStemSplitter())
    assert sorted(summary["stem_paths"]) == ["bass", "drums", "other", "vocals"]
    reference, rate, _ = _read(str(tmp_path / "mix.wav"))
    total = None
    for path in summary["stem_paths"].values():
        data, stem_rate, subtype = _read(path)
        assert (stem_rate, data.shape[1], subtype) == (44_100, 2, "PCM_16")
        assert data.shape[0] == round(reference.shape[0] * 44_100 / rate)
        total = data if total is None else total + data
    assert total is not None
    # the stems of the (resampled, duplicated-to-stereo) mix add back to it within 16-bit rounding
    mix44, _ = sf.read(str(tmp_path / "mix.wav"), dtype="float64")
    expected = soxr.resample(mix44, rate, 44_100, quality="VHQ")[: total.shape[0]]
    assert np.max(np.abs(total[:, 0] - expected)) < 4 * 2.0**-15
    assert np.max(np.abs(total[:, 0] - total[:, 1])) < 4 * 2.0**-15
    assert summary["duration_seconds"] == pytest.approx(2.0, abs=1e-3)
    assert summary["real_time_factor"] > 0


def test_two_stem_mode(tmp_path: Path) -> None:
    _mix(tmp_path / "mix.wav")
    summary = separate_file(tmp_path / "mix.wav", 2, tmp_path / "stems", DspStemSplitter())
    assert list(summary["stem_paths"]) == ["vocals", "accompaniment"]
    vocals, _, _ = _read(summary["stem_paths"]["vocals"])
    accompaniment, _, _ = _read(summary["stem_paths"]["accompaniment"])
    assert np.sqrt(np.mean(accompaniment**2)) > np.sqrt(
        np.mean(vocals**2)
    )  # the mix has no voice band energy


def test_the_asset_materializes_a_partition_on_a_dagster_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_DATA", str(tmp_path / "data"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml())
    _mix(tmp_path / "mix.wav", seconds=1.0)
    key = "sep-0b7c6a8e-3f1d-4c2b-9a5e-6d4f3c2b1a09"
    write_separation_request(key, tmp_path / "mix.wav", 4)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(SEPARATION_PARTITIONS_NAME, [key])
        result = dg.materialize(
            [separated_stems],
            instance=instance,
            partition_key=key,
            resources={"separator": StemSplitterResource(source="dsp"), "settings": SettingsResource()},
        )
        assert result.success
        (materialization,) = result.asset_materializations_for_node("separated_stems")
        assert materialization.metadata["stems"].value == 4
        assert materialization.metadata["drums_path"].value.endswith(f"{key}/stems/drums.wav")
    summary = read_separation_summary(key)
    assert summary is not None and set(summary["stem_paths"]) == {"drums", "bass", "other", "vocals"}
    assert json.loads((tmp_path / "data" / "outputs" / key / "separation.json").read_text())["stems"] == 4


def test_bad_stem_mode_and_key_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_DATA", str(tmp_path))
    with pytest.raises(InputError, match="stems=3"):
        write_separation_request("sep-x", tmp_path / "a.wav", 3)
    with pytest.raises(InputError, match="partition key"):
        write_separation_request("../escape", tmp_path / "a.wav", 4)
