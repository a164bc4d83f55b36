"""The client's address, the one fact every per-address limit keys on.

Behind proxies, REMOTE_ADDR is the nearest proxy and X-Forwarded-For is a list each proxy appended
its peer to. Only the entries our own proxies appended can be believed: anything to their left was
written by the client. So with TRUSTED_PROXY_COUNT = n the client is the n-th entry from the right,
and with 0 (no proxy in front) X-Forwarded-For is ignored entirely, since anyone can send it.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address of the client that sent `request`, trusting only TRUSTED_PROXY_COUNT proxies."""
    peer = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    # Fewer entries than trusted proxies means a request that did not come through all of them
    # (or a misconfigured chain): nothing in the header is vouched for, so keep the peer.
    if len(forwarded) < hops:
        return peer
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # A trusted proxy wrote something that is not an address (e.g. "unknown"): keep the peer
        # rather than key a limit on free text.
        return peer


def limit_key(address: str) -> str:
    """What a per-address limit counts against: an IPv4 address, or the /64 of an IPv6 one.

    An IPv6 host is routinely given a whole /64 and can pick any of its 2^64 addresses, so a limit
    per full IPv6 address would be no limit. An IPv4-mapped address is its IPv4 address.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
