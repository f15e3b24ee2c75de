"""Downloading a client-named `audio_url` without letting it reach inside our network (SSRF guard).

- Only `http` and `https`.
- The host is resolved first and *every* address it resolves to must be public (`is_global`, not
  multicast). Private, loopback, link-local (169.254.0.0/16, cloud metadata), shared (100.64/10),
  reserved, unspecified and IPv4-mapped forms of those are refused unless `API_URL_ALLOWLIST` names the
  host, the address, or a network containing it.
- The connection goes to the address that was checked (pinned; the Host header and TLS SNI/certificate
  check keep the original name), so a DNS answer that changes between check and connect cannot
  redirect us. Proxy environment variables are ignored for the same reason.
- Redirects are followed by hand, at most `MAX_REDIRECTS`, each hop checked like the first.
- The body is streamed to disk and cut off at the size limit; the whole download (redirects included)
  has one deadline.

Errors are `FetchError(status_code, detail)` with a one-line detail naming the field and the value.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from musicgen_pipeline.settings import Settings

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(Exception):
    """A URL that may not be fetched or could not be: HTTP status for the client and a one-line detail."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class UrlPolicy:
    """What `fetch_to_file` may reach and how much it may read."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 200 * 1024 * 1024
    timeout_seconds: float = 60.0
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        return cls.parse(
            settings.api_url_allowlist,
            max_bytes=round(settings.max_upload_mb * 1024 * 1024),
            timeout_seconds=settings.api_fetch_timeout_seconds,
        )

    @classmethod
    def parse(cls, allowlist: str, *, max_bytes: int, timeout_seconds: float) -> UrlPolicy:
        """`allowlist`: comma/space separated host names, IP addresses and CIDR networks."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in allowlist.replace(",", " ").split():
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks), max_bytes, timeout_seconds)

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts

    def address_allowed(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.allow_networks if network.version == address.version
        )


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_reason(address.ipv4_mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    if not address.is_global:
        return "not publicly routable"
    return None


def _format_host(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


async def resolve_checked(host: str, port: int, policy: UrlPolicy, field: str) -> IPAddress:
    """Resolve `host` and return the address to connect to; refuse when any answer is not allowed."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(400, f"{field}: host {host!r} could not be resolved ({exc})") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchError(400, f"{field}: host {host!r} has no address")
    if policy.host_allowed(host):
        return addresses[0]
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None and not policy.address_allowed(address):
            shown = host if literal is not None else f"{host} ({address})"
            raise FetchError(
                400,
                f"{field}: address {shown} is {reason}; refused (API_URL_ALLOWLIST can allow it)",
            )
    return addresses[0]


async def _open_checked(
    client: httpx.AsyncClient, url: httpx.URL, policy: UrlPolicy, field: str
) -> httpx.Response:
    if url.scheme not in ("http", "https"):
        raise FetchError(400, f"{field}: only http and https URLs are accepted, got {str(url)[:200]!r}")
    host = url.host
    if not host:
        raise FetchError(400, f"{field}: URL has no host: {str(url)[:200]!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = await resolve_checked(host, port, policy, field)
    pinned = url.copy_with(host=str(address))
    default_port = (url.scheme == "https" and port == 443) or (url.scheme == "http" and port == 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    request = client.build_request(
        "GET", pinned, headers={"Host": host_header, "Accept": "audio/*, */*;q=0.5"}, extensions=extensions
    )
    return await client.send(request, stream=True, follow_redirects=False)


async def _download(url: str, dest: Path, policy: UrlPolicy, field: str) -> int:
    current = httpx.URL(url)
    timeout = httpx.Timeout(policy.timeout_seconds, connect=min(10.0, policy.timeout_seconds))
    async with httpx.AsyncClient(trust_env=False, timeout=timeout, follow_redirects=False) as client:
        for _hop in range(policy.max_redirects + 1):
            response = await _open_checked(client, current, policy, field)
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(400, f"{field}: redirect without a Location header from {current}")
                    current = current.join(location)
                    continue
                if response.status_code != 200:
                    raise FetchError(
                        400, f"{field}: download failed with HTTP {response.status_code} from {current}"
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise FetchError(413, _too_large(field, int(declared), policy.max_bytes))
                received = 0
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        received += len(chunk)
                        if received > policy.max_bytes:
                            raise FetchError(
                                413, _too_large(field, received, policy.max_bytes, at_least=True)
                            )
                        await anyio.to_thread.run_sync(out.write, chunk)
                return received
            finally:
                await response.aclose()
    raise FetchError(400, f"{field}: more than {policy.max_redirects} redirects starting at {url[:200]}")


def _too_large(field: str, size: int, limit: int, *, at_least: bool = False) -> str:
    prefix = "more than " if at_least else ""
    return f"{field}: file is {prefix}{size / 1e6:.1f} MB, above the limit of {limit / 1e6:.1f} MB (MAX_UPLOAD_MB)"


async def fetch_to_file(url: str, dest: Path, policy: UrlPolicy, *, field: str = "audio_url") -> int:
    """Download `url` into `dest` under `policy`; returns the byte count. `dest` is removed on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with anyio.fail_after(policy.timeout_seconds):
            return await _download(url, dest, policy, field)
    except FetchError:
        dest.unlink(missing_ok=True)
        raise
    except TimeoutError:
        dest.unlink(missing_ok=True)
        raise FetchError(
            400,
            f"{field}: download did not finish within {policy.timeout_seconds:g} s (API_FETCH_TIMEOUT_SECONDS)",
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        dest.unlink(missing_ok=True)
        raise FetchError(
            400, f"{field}: could not download {url[:200]} ({type(exc).__name__}: {exc})"
        ) from None
