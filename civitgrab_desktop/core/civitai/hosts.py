"""Which hosts we talk to, and which of them may see the API key.

CivitAI serves its site and API on civitai.com (and civitai.red for NSFW browsing since 2026, and
civitai.green, its SFW-only site: src/providers/AppProvider.tsx `useServerDomains`,
src/server/schema/blocks/civitai-image-url.ts `CIVITAI_IMAGE_HOSTS`) and media from its CDN
(image.civitai.com and friends). A configured API base (a mirror, or the local
replica in tests) is trusted like the site. Nothing else is followed: not a `nextPage` link, not a
media URL, not a redirect.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

SITE_HOSTS = frozenset({"civitai.com", "www.civitai.com", "civitai.red", "www.civitai.red", "civitai.green"})
SITE_DOMAINS = ("civitai.com", "civitai.red", "civitai.green")
DEFAULT_SITE = "https://civitai.com"
MAIN_DOMAIN = SITE_DOMAINS[0]  # the site people know; examples in help texts use it


def site_names(joiner: str = " / ") -> str:
    """The sites' names for a message, e.g. "civitai.com / civitai.red"."""
    return joiner.join(SITE_DOMAINS)


# What each site is, for a settings choice: (base URL, label).
SITE_CHOICES = (("https://civitai.com", "civitai.com"), ("https://civitai.red", "civitai.red (NSFW site)"))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, host, port


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address: plain http there never crosses a network."""
    host = host.lower().rstrip(".").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_civitai_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in SITE_DOMAINS)


@dataclass(frozen=True)
class HostPolicy:
    """Decides where requests may go and where the key may be sent."""

    api_base: str

    @property
    def base_origin(self) -> tuple[str, str, int | None]:
        return _origin(self.api_base)

    def is_api_base(self, url: str) -> bool:
        return _origin(url) == self.base_origin

    def is_allowed(self, url: str) -> bool:
        """CivitAI hosts over https, or exactly the configured API base."""
        if self.is_api_base(url):
            return True
        scheme, host, _port = _origin(url)
        return scheme == "https" and bool(host) and is_civitai_host(host)

    def may_send_key(self, url: str) -> bool:
        """May a request to `url` carry the key? Decided per request (each redirect hop is a new
        request): the API base and CivitAI's site hosts, never the CDN or elsewhere, and never
        over plain http to a host that is not this machine (a misconfigured http:// base)."""
        scheme, host, _port = _origin(url)
        if scheme == "http" and not is_loopback_host(host):
            return False
        if self.is_api_base(url):
            return scheme in ("http", "https")
        return scheme == "https" and host in SITE_HOSTS

    def is_allowed_listing(self, url: str) -> bool:
        """A pagination link must stay on an allowed host and inside the API."""
        return self.is_allowed(url) and urlsplit(url).path.startswith("/api/")

    def host_key(self, url: str) -> str:
        scheme, host, port = _origin(url)
        return f"{host}:{port}"
