"""What every page needs: services (paths, settings, key), the library, clients for jobs, the jobs.

The app has ONE aiohttp session (`Services.shared_session`). Each job gets its own `CivitaiClient`
over that shared session, built by `Services.client`: the client's transfer slots are then per job,
so a paused job (which keeps its slots while it waits at a checkpoint) never blocks the other jobs,
and a 429 wait is reported to the job that hit it. Settings changes (key, API base) apply to the
jobs started afterwards. No network code here: services.py builds the clients and checks the key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from civitgrab_desktop.core.config import ENV_API_BASE, ENV_API_KEY, Settings
from civitgrab_desktop.gui.bridge import JobManager
from civitgrab_desktop.services import KeyCheck, Services

LOG = logging.getLogger(__name__)


class AppContext(QObject):
    settingsChanged = Signal()
    statusMessage = Signal(str, int)  # text, milliseconds (0: until replaced)
    queriesChanged = Signal()  # a download saved its queries

    def __init__(self, services: Services, *, api_base_overridden: bool = False, parent: QObject | None = None):
        super().__init__(parent)
        self.services = services
        self.jobs = JobManager(self)
        self.api_base_overridden = api_base_overridden
        self._library_lock = asyncio.Lock()
        self._fts: bool | None = None
        self._closed = False

    # -- shortcuts -------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def api_base(self) -> str:
        return self.services.api_base

    @property
    def api_key(self) -> str | None:
        return self.services.api_key

    @property
    def api_key_from_env(self) -> bool:
        return bool(os.environ.get(ENV_API_KEY, "").strip())

    @property
    def env_api_base(self) -> bool:
        """The API base was fixed for this run (--api-base or CIVITGRAB_API_BASE)."""
        return self.api_base_overridden or bool(os.environ.get(ENV_API_BASE))

    def default_output_dir(self) -> str:
        configured = self.settings.get("output_dir")
        if configured:
            return configured
        return str(Path.home() / "Pictures" / "civitgrab")

    # -- library ---------------------------------------------------------------------------------

    async def library(self):
        async with self._library_lock:
            return await self.services.open_library()

    async def reader(self):
        """The library's read-only connection (the gallery and the database table browse it)."""
        return (await self.library()).reader()

    @property
    def fts_assumed(self) -> bool:
        """What has_fts() answered, or True before it was asked (the usual case)."""
        return self._fts is not False

    async def has_fts(self) -> bool:
        """The library has its FTS5 search index (asked once; False when the question fails,
        so search falls back to LIKE)."""
        if self._fts is None:
            try:
                self._fts = bool(await (await self.reader()).has_fts())
            except Exception:
                self._fts = False
        return self._fts

    # -- network ---------------------------------------------------------------------------------

    def new_client(self, **overrides):
        """A client for one job, sharing the app's session (closing it leaves the session open)."""
        return self.services.client(session=self.services.shared_session, **overrides)

    async def check_api_key(self, key: str, base: str) -> KeyCheck:
        return await self.services.check_api_key(key, base)

    # -- settings changes ------------------------------------------------------------------------

    def set_api_key(self, key: str | None) -> None:
        self.services.api_key = key or None

    def set_api_base(self, base: str) -> None:
        if not self.env_api_base:
            self.services.api_base = base.rstrip("/")

    async def save_settings(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.settings.save)
        except OSError as exc:
            LOG.warning("could not save settings: %s", exc)

    # -- shutdown --------------------------------------------------------------------------------

    async def close(self, job_timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        cut_short = self.jobs.active()
        await self.jobs.shutdown(job_timeout)
        # Jobs stopped because the app quit (not by the user) are offered for resuming next time.
        library = self.services.library
        for handle in cut_short:
            if library is not None and handle.bridge.state in ("stopped", "interrupted"):
                try:
                    await library.update_job(handle.job_id, state="interrupted")
                except Exception as exc:
                    LOG.warning("could not mark job %s as interrupted: %s", handle.job_id, exc)
        await self.save_settings()
        try:
            await self.services.close()
        except Exception:
            LOG.exception("closing the library failed")
