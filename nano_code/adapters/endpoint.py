"""Judging a base URL as urllib3, which connects, reads it; refused where parsers disagree.

`http://evil:80\\@127.0.0.1/v1` is 127.0.0.1 to `urlsplit` but evil:80 to urllib3, so backslashes,
userinfo, %-escapes, non-ASCII, and a host or port `urlsplit` reads otherwise are refused.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple
from urllib.parse import urlsplit

GENERIC = "an http:// or https:// URL"


class UnsafeURL(ValueError):
    """Not a base URL nano-code will connect to; the message says what it must be instead."""

    def __init__(self, expectation: str, show_value: bool = True) -> None:
        super().__init__(expectation)
        self.expectation = expectation
        self.show_value = show_value


class Endpoint(NamedTuple):
    """Where requests to a base URL go, as urllib3 connects: scheme, host (IPv6 without brackets), port."""

    scheme: str
    host: str
    port: int | None

    @property
    def where(self) -> str:
        """The host, with its port when the URL names one (for one line to the user)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def endpoint(url: str) -> Endpoint:
    """The endpoint `url` connects to, judged by urllib3's parser (UnsafeURL when refused)."""
    if not all("!" <= char <= "~" for char in url):
        raise UnsafeURL(f"{GENERIC} of printable ASCII without spaces (a non-ASCII host in its xn-- form)")
    if "\\" in url:
        raise UnsafeURL(f"{GENERIC} without backslashes")
    if not url.lower().startswith(("http://", "https://")):
        raise UnsafeURL(GENERIC)
    authority = url.split("//", 1)[1]
    for end in "/?#":
        authority = authority.split(end, 1)[0]
    if "@" in authority:
        # userinfo: urllib3 does not send it, a recording would keep it, and parsers split it apart differently
        raise UnsafeURL(f"{GENERIC} without a user name or password before the host (value not shown)", False)
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(url)
        split = urlsplit(url)
        split_host, split_port = split.hostname, split.port
    except (LocationParseError, ValueError):
        raise UnsafeURL(GENERIC) from None
    host = (parsed.host or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or parsed.scheme not in ("http", "https"):
        raise UnsafeURL(GENERIC)
    if "%" in authority or host != (split_host or "").lower() or parsed.port != split_port:
        raise UnsafeURL(f"{GENERIC} whose host every URL parser reads alike (no %-escapes in the host)")
    return Endpoint(parsed.scheme, host, parsed.port)


def is_loopback_host(host: str) -> bool:
    """Whether `host` is this machine without asking a resolver: `localhost` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine (localhost, *.localhost or a loopback address)."""
    try:
        host = endpoint(url).host
    except UnsafeURL:
        return False
    return is_loopback_host(host) or host.endswith(".localhost")
