"""Shared layout of the Tag Scraper and Converter pages: an options card on the left (with a
library summary and the Start button), the page's job cards on the right."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.util import spawn
from civitgrab_desktop.gui.widgets.common import Card, section_title
from civitgrab_desktop.gui.widgets.jobs_panel import JobsPanel
from civitgrab_desktop.gui.widgets.page import Page

LOG = logging.getLogger(__name__)
UNAVAILABLE = "not available in this build"


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class WorkPage(Page):
    """Subclasses fill `self.options` (a Card) and implement `start_job()` and `available()`."""

    job_kind = "job"
    job_module = ""  # e.g. civitgrab_desktop.jobs.tags: without it the page cannot start jobs
    feature = "This feature"
    start_label = "Start"
    start_icon = "play"
    empty_text = "No jobs yet."

    more_job_kinds: tuple[str, ...] = ()  # other kinds of jobs this page's list shows

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.root.addWidget(self.splitter, 1)

        self.options = Card()
        self.library_line = QLabel("")
        self.library_line.setObjectName("Muted")
        self.library_line.setWordWrap(True)
        # every work page starts with what the library holds for it; subclasses add the rest
        self.options.body.addWidget(section_title("Library"))
        self.options.body.addWidget(self.library_line)
        self.options.body.addSpacing(4)

        self.error = QLabel("")
        self.error.setObjectName("Error")
        self.error.setWordWrap(True)
        self.error.hide()
        self.start_button = QPushButton(self.start_label)
        self.start_button.setObjectName("Primary")
        icons.set_icon(self.start_button, self.start_icon, "#ffffff")
        self.start_button.clicked.connect(self.start)

        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        holder_layout.addWidget(self.options)
        holder_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(holder)
        scroll.setMinimumWidth(400)
        self.splitter.addWidget(scroll)

        self.jobs_panel = JobsPanel(ctx.jobs, (self.job_kind, *self.more_job_kinds), self.empty_text,
                                    empty_icon=self.start_icon)
        self.jobs_count = self.jobs_panel.jobs_count
        self.clear_button = self.jobs_panel.clear_button
        self.job_list = self.jobs_panel.job_list
        self.job_list.changed.connect(self._jobs_changed)
        self.splitter.addWidget(self.jobs_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([440, 640])

        ctx.jobs.jobAdded.connect(self._jobs_changed)
        ctx.jobs.jobFinished.connect(self._jobs_changed)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.start)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.start)

    def finish_options(self) -> None:
        """Called by subclasses after adding their option widgets."""
        body = self.options.body
        body.addWidget(self.error)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.start_button)
        body.addLayout(row)
        ok, why = self.available()
        self.start_button.setEnabled(ok)
        if ok:
            self.start_button.setToolTip(f"{self.start_label} (Ctrl+Enter). Several jobs can run at once.")
        else:
            self.start_button.setToolTip(why)
            self.error.setObjectName("Warning")
            self.error.setText(why[:1].upper() + why[1:] + ".")
            self.error.show()

    # -- to implement ------------------------------------------------------------------------------

    def available(self) -> tuple[bool, str]:
        if not self.job_module or not module_available(self.job_module):
            return False, f"{self.feature} is {UNAVAILABLE}"
        return True, ""

    async def start_job(self) -> None:
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ValueError with a message for bad options."""

    # -- common --------------------------------------------------------------------------------------

    def start(self) -> None:
        ok, why = self.available()
        if not ok:
            return
        try:
            self.validate()
        except ValueError as exc:
            self.error.setObjectName("Error")
            self.error.style().unpolish(self.error)
            self.error.style().polish(self.error)
            self.error.setText(str(exc))
            self.error.show()
            return
        self.error.hide()
        self.start_button.setEnabled(False)

        async def go() -> None:
            try:
                await self.start_job()
            finally:
                self.start_button.setEnabled(True)

        spawn(go(), name=f"start-{self.job_kind}")

    def _jobs_changed(self, *_args) -> None:
        if self.isVisible():
            spawn(self.refresh_library_line(), name=f"{self.job_kind}-stats")

    def activated(self) -> None:
        spawn(self.refresh_library_line(), name=f"{self.job_kind}-stats")

    async def refresh_library_line(self) -> None:
        try:
            library = await self.ctx.library()
            text = await self.describe_library(library.reader())
        except Exception as exc:  # the summary is a nicety; never an error dialog
            LOG.debug("library counts unavailable: %s", exc)
            return
        if isValid(self.library_line):
            self.library_line.setText(text)

    async def describe_library(self, reader) -> str:
        """A line or two about the library, from read-only queries (off the loop)."""
        return ""

    def save_state(self) -> dict[str, Any]:
        return {"splitter": bytes(self.splitter.saveState().toBase64()).decode("ascii")}

    def restore_state(self, state: dict[str, Any]) -> None:
        if state.get("splitter"):
            self.splitter.restoreState(QByteArray.fromBase64(state["splitter"].encode("ascii")))
