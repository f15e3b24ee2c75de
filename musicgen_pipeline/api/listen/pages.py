"""The listening pages' HTML: an index of partitions and one page per partition.

Plain server-rendered HTML (every value escaped) with one stylesheet and one script shipped as package
data (``static/listen.css``, ``static/listen.js``); no framework, no build step. URLs are relative to
``base`` (the router's prefix, ``/listen``):

- ``{base}/``: partitions newest first (name, prompt, duration, status, rendered at).
- ``{base}/{key}``: the soundtrack player over its picture (``{base}/{key}/picture.png``) with scene
  boundaries and each seam's overlap drawn on it (buttons carrying ``data-seek``: the overlap's start;
  clicking one seeks the soundtrack there and plays), the transition scores with pass/fail per metric,
  the quality loop's regenerations, and players for every segment, aligned segment and seam stem
  (``{base}/{key}/audio/<relpath>``).
"""

from __future__ import annotations

import math
from html import escape
from typing import Any
from urllib.parse import quote

from musicgen_pipeline.api.listen.partition_view import AudioFile, PartitionView

# (report key, label, threshold key, direction): a score passes when above ("min") or below ("max").
METRICS = (
    ("mfcc_similarity", "MFCC similarity", "mfcc_similarity_min", "min"),
    ("spectral_flux", "spectral flux", "spectral_flux_max", "max"),
    ("chroma_correlation", "chroma correlation", "chroma_correlation_min", "min"),
    ("energy_ratio", "energy ratio", "energy_ratio_max", "max"),
)


def sig3(value: Any) -> str:
    """A number to 3 significant digits (what a person reads); anything else as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else escape(str(value))
    if value == 0 or not math.isfinite(value) or abs(value) >= 1e5:
        return f"{value:.3g}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def seconds(value: Any) -> str:
    """Seconds to the millisecond."""
    return f"{value:.3f} s" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _page(title: str, base: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><link rel='icon' href='data:,'>"
        f"<link rel='stylesheet' href='{base}/_static/listen.css'>"
        f"<script defer src='{base}/_static/listen.js'></script></head>"
        f"<body>{body}</body></html>\n"
    )


def index_page(views: list[PartitionView], base: str) -> str:
    rows = "".join(
        "<tr>"
        f"<td><a href='{base}/{quote(v.key)}'>{escape(v.name)}</a><div class='key'>{escape(v.key)}</div></td>"
        f"<td>{escape(v.prompt)}</td>"
        f"<td class='num'>{seconds(v.duration)}</td>"
        f"<td class='{'ok' if v.rendered else 'pending'}'>{escape(v.status)}</td>"
        f"<td>{escape(str((v.summary or {}).get('rendered_at') or '–'))}</td>"
        "</tr>"
        for v in views
    )
    table = (
        "<table class='index'><thead><tr><th>soundtrack</th><th>prompt</th><th>duration</th>"
        f"<th>status</th><th>rendered at (UTC)</th></tr></thead><tbody>{rows}</tbody></table>"
        if views
        else "<p>No partitions yet: render one (<code>musicgen-pipeline render REQUEST.json</code>).</p>"
    )
    return _page("soundtracks", base, f"<h1>Soundtracks</h1><p>Newest first.</p>{table}")


def _player(view: PartitionView, audio: AudioFile, base: str, element_id: str = "") -> str:
    ident = f" id='{element_id}'" if element_id else ""
    src = f"{base}/{quote(view.key)}/audio/{quote(audio.relpath)}"
    return f"<audio{ident} controls preload='metadata' src='{src}'></audio>"


def _percent(time: float, duration: float) -> str:
    return f"{100.0 * min(max(time / duration, 0.0), 1.0):.4f}%"


def _timeline(view: PartitionView, base: str, duration: float) -> str:
    transitions = (view.report or {}).get("transitions") or []
    marks = []
    start = 0.0
    for number, length in enumerate(view.scene_durations[:-1], start=2):
        start += length
        marks.append(
            f"<div class='scene-boundary' style='left:{_percent(start, duration)}' "
            f"title='scene {number} starts at {start:.3f} s'><span>scene {number}</span></div>"
        )
    for t in transitions:
        begin, length = float(t["overlap_start_time"]), float(t["overlap_seconds"])
        verdict = "pass" if t.get("passed") else "fail"
        marks.append(
            f"<button type='button' class='seam {verdict}' data-seek='{begin:.4f}' "
            f"style='left:{_percent(begin, duration)};width:{_percent(length, duration)}' "
            f"title='seam {t['index'] + 1}: crossfade {begin:.3f}–{begin + length:.3f} s ({verdict}); "
            f"click to listen'><span>seam {t['index'] + 1}</span></button>"
        )
    ticks = []
    step = _tick_step(duration)
    k = 0
    while k * step <= duration + 1e-9:
        ticks.append(f"<span style='left:{_percent(k * step, duration)}'>{k * step:g} s</span>")
        k += 1
    return (
        f"<div class='timeline' id='timeline' data-duration='{duration:.6f}'>"
        f"<img src='{base}/{quote(view.key)}/picture.png' alt='waveform (top) and spectrogram (bottom) "
        "of the soundtrack' draggable='false'>"
        f"{''.join(marks)}<div class='playhead' id='playhead'></div></div>"
        f"<div class='axis'>{''.join(ticks)}</div>"
    )


def _tick_step(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300):
        if duration / step <= 12:
            return float(step)
    return 600.0


def _seam_list(view: PartitionView) -> str:
    items = []
    for t in (view.report or {}).get("transitions") or []:
        begin, length = float(t["overlap_start_time"]), float(t["overlap_seconds"])
        verdict = "pass" if t.get("passed") else "FAIL"
        bass = (
            f", bass swapped at {seconds(t['bass_swap_time'])}" if t.get("bass_swap_time") is not None else ""
        )
        items.append(
            f"<li><button type='button' class='seek' data-seek='{begin:.4f}'>▶ seam {t['index'] + 1}</button> "
            f"crossfade {begin:.3f}–{begin + length:.3f} s (centre {seconds(t.get('boundary_time'))}, scene "
            f"boundary {seconds(t.get('target_time'))}{bass}), {sig3(t.get('bpm_before'))} → "
            f"{sig3(t.get('bpm_after'))} BPM: <b class='{verdict.lower()}'>{verdict}</b></li>"
        )
    return f"<ul class='seams'>{''.join(items)}</ul>" if items else ""


def _scores(view: PartitionView) -> str:
    report = view.report or {}
    transitions = report.get("transitions") or []
    if not transitions:
        return "<p>No transition report yet.</p>" if not view.rendered else "<p>One scene: no seams.</p>"
    thresholds = report.get("thresholds") or {}
    head = "".join(
        f"<th>{label}<div class='limit'>{'&gt;' if way == 'min' else '&lt;'} {sig3(thresholds.get(limit))}</div></th>"
        for _, label, limit, way in METRICS
    )
    rows = []
    for t in transitions:
        failures = " ".join(str(f) for f in t.get("failures") or [])
        cells = []
        for key, _, limit, way in METRICS:
            value, bound = t.get(key), thresholds.get(limit)
            ok = None
            if isinstance(value, int | float) and isinstance(bound, int | float):
                ok = value > bound if way == "min" else value < bound
            mark = "" if ok is None else (" pass" if ok else " FAIL")
            cells.append(
                f"<td class='num {'' if ok is None else 'ok' if ok else 'bad'}'>{sig3(value)}{mark}</td>"
            )
        clicks = t.get("clicks") or []
        cells.append(
            f"<td class='num {'bad' if clicks else 'ok'}'>{len(clicks)}{' FAIL' if clicks else ' pass'}</td>"
        )
        verdict = "pass" if t.get("passed") else "FAIL"
        rows.append(
            f"<tr><td>seam {t['index'] + 1}</td><td class='num'>{seconds(t.get('boundary_time'))}</td>"
            f"{''.join(cells)}<td class='{'ok' if t.get('passed') else 'bad'}'>{verdict}"
            f"<div class='why'>{escape(failures)}</div></td></tr>"
        )
    return (
        "<table class='scores'><thead><tr><th>seam</th><th>centre</th>"
        f"{head}<th>clicks</th><th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _regenerations(view: PartitionView) -> str:
    loop = (view.report or {}).get("quality_loop") or {}
    scenes = loop.get("scenes") or []
    if not scenes:
        return ""
    rows = []
    for scene in scenes:
        attempts = []
        for attempt in scene.get("attempts") or []:
            passed = attempt.get("passed")
            verdict = "first scene (not scored)" if passed is None else "pass" if passed else "fail"
            scores = attempt.get("scores") or {}
            detail = ", ".join(
                f"{label} {sig3(scores.get(key))}" for key, label, _, _ in METRICS if key in scores
            )
            attempts.append(
                f"<li>attempt {attempt.get('attempt')} (seed {attempt.get('seed')}): {verdict}"
                f"{': ' + detail if detail else ''}</li>"
            )
        exhausted = " <b class='fail'>kept its best failing attempt</b>" if scene.get("exhausted") else ""
        rows.append(
            f"<tr><td>scene {int(scene.get('index', 0)) + 1}</td><td class='num'>{scene.get('regenerations', 0)}</td>"
            f"<td>attempt {scene.get('kept_attempt')} (seed {scene.get('seed')}){exhausted}</td>"
            f"<td><ul>{''.join(attempts)}</ul></td></tr>"
        )
    state = "on" if loop.get("enabled") else "off"
    return (
        f"<h2 id='regenerations'>Regenerations</h2><p>Quality loop {state}, at most {loop.get('max_regen_attempts')} "
        "regenerations per scene.</p><table class='loop'><thead><tr><th>scene</th><th>regenerations</th>"
        f"<th>kept</th><th>attempts</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _segments(view: PartitionView, base: str) -> str:
    aligned = {a.relpath.rsplit("/", 1)[-1]: a for a in view.aligned}
    rows = []
    for segment in view.segments:
        name = segment.relpath.rsplit("/", 1)[-1]
        match = aligned.get(name)
        picture = name.replace(".wav", ".png")
        image = (
            f"<img class='thumb' src='{base}/{quote(view.key)}/pictures/{quote(picture)}' alt='{escape(segment.label)}'>"
            if picture in view.pictures
            else ""
        )
        rows.append(
            f"<tr><td>{escape(segment.label)}</td><td>{_player(view, segment, base)}</td>"
            f"<td>{_player(view, match, base) if match else '–'}</td><td>{image}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h2 id='segments'>Segments</h2><table class='segments'><thead><tr><th>scene</th><th>generated</th>"
        f"<th>aligned (tempo-matched)</th><th>picture</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _stems(view: PartitionView, base: str) -> str:
    blocks = []
    for seam in view.stems:
        players = "".join(
            f"<div class='stem'><span>{escape(f.label)}</span>{_player(view, f, base)}</div>"
            for f in seam.files
        )
        blocks.append(f"<section class='seam-stems'><h3>seam {seam.index + 1}</h3>{players}</section>")
    if not blocks:
        return ""
    return (
        "<h2 id='stems'>Seam stems</h2><p>The separated crossfade windows of both sides of each seam "
        f"(<i>prev</i>: the outgoing scene, <i>next</i>: the incoming one).</p>{''.join(blocks)}"
    )


def partition_page(view: PartitionView, base: str) -> str:
    summary = view.summary or {}
    facts = [
        ("partition", escape(view.key)),
        ("prompt", escape(view.prompt)),
        ("duration", seconds(view.duration)),
        ("status", escape(view.status)),
    ]
    if summary:
        facts += [
            ("tempo", f"{sig3(summary.get('target_bpm'))} BPM"),
            ("loudness", f"{sig3(summary.get('loudness_lufs'))} LUFS"),
            ("model", escape(str(summary.get("model")))),
            ("seed", escape(str(summary.get("seed")))),
            ("regenerations", escape(str(summary.get("regenerations")))),
            ("rendered at (UTC)", escape(str(summary.get("rendered_at")))),
        ]
    facts_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    if view.soundtrack is not None and view.duration:
        track = (
            "<h2 id='soundtrack-player'>Soundtrack</h2>"
            f"{_player(view, view.soundtrack, base, 'soundtrack')}"
            "<p class='hint'>Dashed lines: scene boundaries. Shaded bands: each seam's crossfade; click one "
            "(or a seam below) to hear it from its start; click anywhere on the picture to seek.</p>"
            f"{_timeline(view, base, view.duration)}{_seam_list(view)}"
        )
    else:
        track = "<h2>Soundtrack</h2><p>Not mixed yet.</p>"
    body = (
        f"<p><a href='{base}/'>← all soundtracks</a></p><h1>{escape(view.name)}</h1>"
        f"<dl class='facts'>{facts_html}</dl>{track}"
        f"<h2 id='scores'>Transition scores</h2>{_scores(view)}{_regenerations(view)}"
        f"{_segments(view, base)}{_stems(view, base)}"
    )
    return _page(f"{view.name}: listen", base, body)
