"""App services shared by the GUI and the CLI: paths, settings, logging, the library, and the one
place that builds HTTP clients and talks to the service outside a job (the API key check).

Front ends (gui/, cli/) call this; jobs never do: they are handed the library and the client they
use. The GUI shares one aiohttp session between its jobs (`shared_session`); each CLI run's client
owns its session.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import aiohttp

from civitgrab_desktop.core import secrets
from civitgrab_desktop.core.civitai.client import (
    USER_AGENT,
    CivitaiClient,
    CivitaiError,
    ClientOptions,
    ClientRequestError,
    RateLimitedError,
)
from civitgrab_desktop.core.civitai.urls import MODELS_PATH, api_url
from civitgrab_desktop.core.config import AppPaths, Settings, resolve_api_base, setup_logging
from civitgrab_desktop.core.library.async_library import Library

LOG = logging.getLogger(__name__)


def _env_float(name: str, default: float) -> float:
    """Tuning knobs for tests and power users (e.g. a short backoff against a local replica)."""
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


@dataclass(frozen=True)
class KeyCheck:
    """The API base's answer to a key: accepted or not, in a sentence for the user."""

    ok: bool
    verdict: str


@dataclass
class Services:
    paths: AppPaths
    settings: Settings
    api_base: str
    api_key: str | None = None
    library: Library | None = None
    log_file: str = ""
    _clients: list[CivitaiClient] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    @classmethod
    def create(
        cls,
        *,
        data_dir: str | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        debug: bool = False,
        console_level: int | None = None,
    ) -> Services:
        paths = AppPaths.resolve(data_dir).ensure()
        log_file = setup_logging(paths, debug=debug, console_level=console_level)
        settings = Settings.load(paths.settings)
        base = resolve_api_base(api_base, settings)
        key = secrets.load_api_key(api_key)
        LOG.info("civitgrab starting: data dir %s, API base %s, key %s", paths.data_dir, base, "set" if key else "not set")
        return cls(paths, settings, base, key, log_file=str(log_file))

    async def open_library(self) -> Library:
        if self.library is None:
            self.library = await Library.open(self.paths.library)
        return self.library

    # -- network ---------------------------------------------------------------------------------

    @property
    def shared_session(self) -> aiohttp.ClientSession:
        """One HTTP session for many clients (the GUI's jobs), created on first use inside the
        running loop; `close()` closes it."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=100, limit_per_host=40, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})
        return self._session

    def client_options(self, **overrides) -> ClientOptions:
        """The settings' concurrency, timeout, retries and politeness, and the backoff limit
        ($CIVITGRAB_BACKOFF_MAX, default 10 s); keyword arguments win."""
        s = self.settings
        return ClientOptions(
            concurrency=overrides.pop("concurrency", s.get("concurrency")),
            timeout=overrides.pop("timeout", s.get("timeout")),
            retries=overrides.pop("retries", s.get("retries")),
            politeness=overrides.pop("politeness", s.get("politeness_interval")),
            backoff_max=overrides.pop("backoff_max", _env_float("CIVITGRAB_BACKOFF_MAX", 10.0)),
            **overrides,
        )

    def client(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        **overrides,
    ) -> CivitaiClient:
        """The one way the app builds a CivitaiClient: this run's API base and key (unless given)
        and `client_options(**overrides)`. With `session` the client borrows it (closing the client
        leaves it open); without, the client owns its session and `close()` closes it."""
        client = CivitaiClient(
            api_base or self.api_base,
            api_key=api_key if api_key is not None else self.api_key,
            options=self.client_options(**overrides),
            session=session,
        )
        if session is None:
            self._clients.append(client)
        return client

    async def check_api_key(self, key: str, base: str | None = None) -> KeyCheck:
        """GET <api base>/api/v1/models?limit=1 with the key, once (no retries)."""
        base = base or self.api_base
        client = self.client(session=self.shared_session, api_base=base, api_key=key,
                             retries=0, listing_retries=0, timeout=20)
        try:
            await client.get_json(api_url(base, MODELS_PATH, {"limit": 1}), kind="listing")
            return KeyCheck(True, f"✓ {base} accepted the key.")
        except ClientRequestError as exc:
            if exc.status in (401, 403):
                return KeyCheck(False, f"✗ {base} rejected the key (HTTP {exc.status}). Check that it was copied whole.")
            return KeyCheck(False, f"✗ {base} answered HTTP {exc.status}: {exc.reason}")
        except RateLimitedError:
            return KeyCheck(False, f"{base} is rate limiting requests right now; try again in a minute.")
        except CivitaiError as exc:
            return KeyCheck(False, f"✗ Could not check the key with {base}: {exc.reason}")
        finally:
            await client.close()

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()
        if self.library is not None:
            await self.library.close()
            self.library = None
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
