"""Who is on the other end of a connection: the client's address for rate limits, and whether a
browser's request comes from a page of this site.

**Forwarded headers are trusted only from configured proxies** (``LETHE_TRUSTED_PROXIES``, addresses
or networks, default none). From any other peer ``X-Forwarded-For`` is ignored, so a local process or
a proxy that passes the client's own header on cannot choose its rate-limit bucket. From a trusted
proxy the client is the right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy
(the left-most entries are whatever the client wrote). ``lethe serve`` turns uvicorn's own proxy
header handling off, so this is the only place it happens (under ``uvicorn --factory`` pass
``--no-proxy-headers``).

An IPv6 client is bucketed by its /64 network: one host usually holds the whole /64.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import Request

from lethe.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``LETHE_TRUSTED_PROXIES`` (comma-separated addresses or networks) as networks; ConfigError on
    anything else."""
    networks = []
    for part in (p.strip() for p in setting.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"LETHE_TRUSTED_PROXIES: {part!r} is not an address or a network") from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in trusted)


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """The client's address as a rate-limit key: the peer's, or, when the peer is a trusted proxy,
    the right-most untrusted address of ``X-Forwarded-For``; an IPv6 address as its /64."""
    peer = request.client.host if request.client else ""
    address = _address(peer)
    if address is None:
        return peer or "unknown"
    if trusted and _trusted(address, trusted):
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
            candidate = _address(hop)
            if candidate is None:
                break  # a garbled entry: stop at the last address a trusted proxy vouched for
            address = candidate
            if not _trusted(candidate, trusted):
                break
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def address_hash(key: bytes, address: str) -> str:
    """A keyed hash of a client address for the audit log: attributable (the same address gives the
    same value while the service key stays) without recording the address itself."""
    return hmac.new(key, b"lethe.client:" + address.encode(), hashlib.sha256).hexdigest()[:16]


def same_site(request: Request) -> bool:
    """Whether a browser says the request comes from a page of this site: its ``Origin`` (or, without
    one, ``Referer``) names this host. A request with neither (a script, curl) is not a browser's
    cross-site form and passes; ``Origin: null`` does not."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    host = request.headers.get("host", "").lower()
    netloc = urlsplit(source.strip()).netloc.lower() if source.strip() != "null" else ""
    return bool(host) and netloc == host
