"""The audio_url SSRF guard: scheme, address classes after DNS, redirects, size and time bounds."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from musicgen_pipeline.api.fetch import FetchError, UrlPolicy, fetch_to_file, refusal_reason, resolve_checked
from musicgen_pipeline_tests.api.helpers import file_server, tone_wav_bytes

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "not publicly routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allowlist_parses_hosts_addresses_and_networks() -> None:
    policy = UrlPolicy.parse("localhost, 127.0.0.1 10.0.0.0/8,[::1]", max_bytes=1, timeout_seconds=1)
    assert policy.host_allowed("LOCALHOST.")
    assert policy.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert policy.address_allowed(ipaddress.ip_address("10.200.0.1"))
    assert policy.address_allowed(ipaddress.ip_address("::1"))
    assert not policy.address_allowed(ipaddress.ip_address("127.0.0.2"))
    assert not policy.address_allowed(ipaddress.ip_address("169.254.169.254"))


def test_host_names_are_checked_after_resolution() -> None:
    """`localhost` is a name, but what it resolves to is loopback: refused without the allow-list."""
    policy = UrlPolicy()
    with pytest.raises(FetchError) as err:
        asyncio.run(resolve_checked("localhost", 80, policy, "audio_url"))
    assert err.value.status_code == 400
    assert (
        "localhost" in err.value.detail
        and "loopback" in err.value.detail
        and "API_URL_ALLOWLIST" in err.value.detail
    )
    allowed = UrlPolicy.parse("localhost", max_bytes=1, timeout_seconds=1)
    assert refusal_reason(asyncio.run(resolve_checked("localhost", 80, allowed, "audio_url"))) == "loopback"


def _fetch(url: str, dest: Path, policy: UrlPolicy) -> int:
    return asyncio.run(fetch_to_file(url, dest, policy))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.wav",
        "http://2130706433/a.wav",  # 127.0.0.1 as one decimal number
        "http://0x7f.0.0.1/a.wav",
        "http://10.0.0.1/a.wav",
    ],
)
def test_private_urls_refused_without_a_connection(url: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        _fetch(url, tmp_path / "x", UrlPolicy(timeout_seconds=5))
    assert err.value.status_code == 400
    assert "refused" in err.value.detail or "could not be resolved" in err.value.detail
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.wav", "gopher://x/", "/etc/passwd"]
)
def test_only_http_and_https(url: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        _fetch(url, tmp_path / "x", UrlPolicy())
    assert "http" in err.value.detail


def test_allowlisted_download_streams_to_disk_with_the_original_host_header(tmp_path: Path) -> None:
    body = tone_wav_bytes(0.5)
    with file_server({"/a.wav": (200, {"Content-Type": "audio/wav"}, body, 0.0)}) as server:
        port = server.server_address[1]
        policy = UrlPolicy.parse("127.0.0.1", max_bytes=MB, timeout_seconds=10)
        size = _fetch(f"http://127.0.0.1:{port}/a.wav", tmp_path / "a.wav", policy)
        assert size == len(body)
        assert (tmp_path / "a.wav").read_bytes() == body
        # by name: the name is allow-listed, the connection goes to the resolved (pinned) address
        policy = UrlPolicy.parse("localhost", max_bytes=MB, timeout_seconds=10)
        try:
            _fetch(f"http://localhost:{port}/a.wav", tmp_path / "b.wav", policy)
        except FetchError as exc:  # localhost resolving to ::1 only (no IPv4 listener): not our concern
            pytest.skip(f"localhost does not reach the IPv4 test server: {exc.detail}")
        assert server.seen[-1] == ("/a.wav", f"localhost:{port}")


def test_redirect_to_a_metadata_address_is_refused(tmp_path: Path) -> None:
    routes = {
        "/hop": (302, {"Location": "/a.wav"}, b"", 0.0),
        "/a.wav": (200, {}, tone_wav_bytes(0.2), 0.0),
        "/evil": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"", 0.0),
        "/evil2": (301, {"Location": "http://127.0.0.2:1/secret"}, b"", 0.0),
        "/loop": (302, {"Location": "/loop"}, b"", 0.0),
    }
    with file_server(routes) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        policy = UrlPolicy.parse("127.0.0.1", max_bytes=MB, timeout_seconds=10)
        assert _fetch(f"{base}/hop", tmp_path / "ok", policy) > 0
        for path, shown in (("/evil", "169.254.169.254"), ("/evil2", "127.0.0.2")):
            with pytest.raises(FetchError) as err:
                _fetch(base + path, tmp_path / "x", policy)
            assert shown in err.value.detail and "refused" in err.value.detail
        with pytest.raises(FetchError) as err:
            _fetch(f"{base}/loop", tmp_path / "x", policy)
        assert "redirects" in err.value.detail
    assert not (tmp_path / "x").exists()


def test_size_and_time_are_bounded(tmp_path: Path) -> None:
    routes = {
        "/big": (200, {}, b"\0" * (3 * 1024), 0.0),
        "/slow": (200, {}, b"RIFF", 3.0),
        "/gone": (404, {}, b"", 0.0),
    }
    with file_server(routes) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        small = UrlPolicy.parse("127.0.0.1", max_bytes=1024, timeout_seconds=10)
        with pytest.raises(FetchError) as err:
            _fetch(f"{base}/big", tmp_path / "x", small)
        assert err.value.status_code == 413 and "MAX_UPLOAD_MB" in err.value.detail
        quick = UrlPolicy.parse("127.0.0.1", max_bytes=MB, timeout_seconds=0.5)
        with pytest.raises(FetchError) as err:
            _fetch(f"{base}/slow", tmp_path / "x", quick)
        assert "did not finish within 0.5 s" in err.value.detail
        with pytest.raises(FetchError) as err:
            _fetch(f"{base}/gone", tmp_path / "x", small)
        assert "HTTP 404" in err.value.detail
    assert not (tmp_path / "x").exists()
