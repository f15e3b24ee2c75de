"""A client written the way `seed-api.md` describes the known client (the photo-memory video generator).

It sends the key on every call, reads only `job_id` from a submission, polls `/jobs/{id}` every 2 s
reading `status`, `progress` (as a number) and `progress_detail`, tolerates up to 5 timeouts in a row,
then downloads `result_urls[0]` (relative, or same origin). One scene -> `/generate` with the scene's
mood as the prompt and the duration clamped to 10-120; two or more -> `/generate/soundtrack` with one
scene per clip, `use_beat_aligned_crossfade: true`, `crossfade_duration: 2.0`. For `/separate` it
recognises four stems by `_drums`/`_bass`/`_vocals`/`_other` in the URLs, else `_vocals`/`_accompaniment`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

POLL_SECONDS = 2.0
MAX_TIMEOUTS_IN_A_ROW = 5


class ClientError(RuntimeError):
    pass


@dataclass
class KnownClient:
    base_url: str
    api_key: str
    out_dir: Path
    poll_seconds: float = POLL_SECONDS
    max_wait_seconds: float = 600.0
    progress_seen: list[tuple[str, float, dict | None]] = field(default_factory=list)

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def _submit(self, path: str, **kwargs: object) -> str:
        response = httpx.post(urljoin(self.base_url, path), headers=self._headers(), timeout=120, **kwargs)
        if response.status_code != 200:
            raise ClientError(f"{path}: HTTP {response.status_code} {response.text}")
        return str(response.json()["job_id"])

    def wait(self, job_id: str) -> list[str]:
        timeouts = 0
        deadline = time.monotonic() + self.max_wait_seconds
        while time.monotonic() < deadline:
            try:
                response = httpx.get(
                    urljoin(self.base_url, f"/jobs/{job_id}"), headers=self._headers(), timeout=10
                )
            except httpx.TimeoutException:
                timeouts += 1
                if timeouts > MAX_TIMEOUTS_IN_A_ROW:
                    raise ClientError("too many timeouts in a row") from None
                continue
            timeouts = 0
            data = response.json()
            status, progress, detail = data["status"], float(data["progress"]), data["progress_detail"]
            self.progress_seen.append((status, progress, detail))
            if status == "completed":
                return list(data["result_urls"])
            if status == "failed":
                raise ClientError(f"job failed: {data['error']}")
            time.sleep(self.poll_seconds)
        raise ClientError(f"job {job_id} not done in {self.max_wait_seconds} s")

    def download(self, job_id: str, url: str) -> Path:
        response = httpx.get(urljoin(self.base_url, url), headers=self._headers(), timeout=60)
        if response.status_code != 200:
            raise ClientError(f"download {url}: HTTP {response.status_code}")
        name = url.rsplit("/", 1)[-1].split("_", 1)[-1]
        path = self.out_dir / f"{job_id[:8]}_{name}"
        path.write_bytes(response.content)
        return path

    def music_for_clips(self, clips: list[tuple[str, float]], base_prompt: str) -> Path:
        """One piece of music for a video made of `clips` (mood, seconds)."""
        if len(clips) == 1:
            mood, seconds = clips[0]
            job_id = self._submit(
                "/generate", json={"prompt": mood, "duration": int(min(120, max(10, seconds)))}
            )
        else:
            scenes = [{"mood": mood, "duration": int(max(5, seconds))} for mood, seconds in clips]
            job_id = self._submit(
                "/generate/soundtrack",
                json={
                    "base_prompt": base_prompt,
                    "scenes": scenes,
                    "use_beat_aligned_crossfade": True,
                    "crossfade_duration": 2.0,
                },
            )
        urls = self.wait(job_id)
        return self.download(job_id, urls[0])

    def stems(self, audio_path: Path) -> dict[str, Path]:
        with audio_path.open("rb") as handle:
            job_id = self._submit("/separate", files={"file": (audio_path.name, handle, "audio/wav")})
        urls = self.wait(job_id)
        four = all(any(f"_{name}" in url for url in urls) for name in ("drums", "bass", "vocals", "other"))
        names = ("drums", "bass", "other", "vocals") if four else ("vocals", "accompaniment")
        out = {}
        for name in names:
            url = next(u for u in urls if f"_{name}" in u)
            out[name] = self.download(job_id, url)
        return out
