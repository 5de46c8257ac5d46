"""App services shared by the GUI and the CLI: paths, settings, logging, library, client."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from civitgrab_desktop.core import secrets
from civitgrab_desktop.core.civitai.client import CivitaiClient, ClientOptions
from civitgrab_desktop.core.config import AppPaths, Settings, resolve_api_base, setup_logging
from civitgrab_desktop.core.library.async_library import Library

LOG = logging.getLogger(__name__)


def _env_float(name: str, default: float) -> float:
    """Tuning knobs for tests and power users (e.g. a short backoff against a local replica)."""
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


@dataclass
class Services:
    paths: AppPaths
    settings: Settings
    api_base: str
    api_key: str | None = None
    library: Library | None = None
    log_file: str = ""
    _clients: list[CivitaiClient] = field(default_factory=list)

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

    def client(self, **overrides) -> CivitaiClient:
        s = self.settings
        options = ClientOptions(
            concurrency=overrides.pop("concurrency", s.get("concurrency")),
            timeout=overrides.pop("timeout", s.get("timeout")),
            retries=overrides.pop("retries", s.get("retries")),
            politeness=overrides.pop("politeness", s.get("politeness_interval")),
            backoff_max=overrides.pop("backoff_max", _env_float("CIVITGRAB_BACKOFF_MAX", 10.0)),
            **overrides,
        )
        client = CivitaiClient(self.api_base, api_key=self.api_key, options=options)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()
        if self.library is not None:
            await self.library.close()
            self.library = None
