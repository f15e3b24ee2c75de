"""The REST app's routes, one `APIRouter` per concern, each built from the app's `ApiContext`.

- `generate.generate_router`: ``POST /generate``, ``POST /generate/soundtrack`` (API key).
- `separate.separate_router`: ``POST /separate`` (multipart upload or JSON ``audio_url``; API key).
- `jobs.jobs_router`: ``DELETE /jobs/{id}`` (API key), ``GET /jobs/{id}``.
- `health.health_router`: ``GET /health``.
- `files.files_router`: ``GET /files/{name}``.
- `metrics.metrics_router`: ``GET /metrics`` (Prometheus), ``GET /metrics/json``.
Protected routes use `auth.KeyCheckedRoute` (the key is checked before the body is read).
"""
