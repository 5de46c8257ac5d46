"""Browse & Download: the query form on the left, the download jobs on the right; starting,
retrying and (after a restart) resuming download jobs. What the form offers and how it reads
typed and pasted input is in `download_input.py`."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.civitai.hosts import site_names
from civitgrab_desktop.core.civitai.urls import parse_pasted
from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.bridge import JobHandle
from civitgrab_desktop.gui.panels.download_input import (
    LAYOUTS,
    MODES,
    NSFW_OPTIONS,
    PLACEHOLDERS,
    TITLE_PREFIX,
    VIDEO_OPTIONS,
    InputError,
    looks_like_link,
    rewrite_pasted,
    validate_identifiers,
)
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.gui.widgets.common import Card, FolderPicker, SegmentedControl, hint, section_title
from civitgrab_desktop.gui.widgets.jobs_panel import JobsPanel
from civitgrab_desktop.gui.widgets.page import Page
from civitgrab_desktop.jobs.download import DownloadJob, DownloadParams
from civitgrab_desktop.jobs.update import forget_not_found, save_queries

LOG = logging.getLogger(__name__)

class DownloadPage(Page):
    key = "download"
    title = "Browse & Download"
    subtitle = "Download the images and videos of users, models or tags at full resolution."
    icon_name = "download"

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        s = ctx.settings
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.root.addWidget(self.splitter, 1)

        # -- form (scrollable so nothing is clipped on small screens) --
        form_card = Card()
        form_card.body.addWidget(section_title("What to download"))
        self.mode = SegmentedControl(MODES)
        self.mode.changed.connect(self._on_mode)
        form_card.body.addWidget(self.mode)

        self.identifiers = QLineEdit()
        self.identifiers.setClearButtonEnabled(True)
        self.identifiers.setAccessibleName("Identifiers")
        self.identifiers.setToolTip(f"Comma-separated. {site_names(' and ')} links are understood (paste or drop).")
        self.identifiers.textChanged.connect(self._on_text)
        self.identifiers.returnPressed.connect(self.start)
        form_card.body.addWidget(self.identifiers)
        self.input_note = hint(f"Comma-separated. You can paste or drop {site_names()} links.")
        form_card.body.addWidget(self.input_note)

        form_card.body.addSpacing(4)
        form_card.body.addWidget(section_title("Options"))
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(8)

        self.nsfw = QComboBox()
        for value, label in NSFW_OPTIONS:
            self.nsfw.addItem(label, value)
        self.nsfw.setToolTip("Which NSFW levels to include. Some NSFW content needs an API key (Settings → Network).")
        self._select(self.nsfw, s.get("nsfw"))
        form.addRow("NSFW levels", self.nsfw)

        self.quality = QComboBox()
        self.quality.addItem("Original (full resolution)", True)
        self.quality.addItem("Resized (smaller JPEG)", False)
        self.quality.setToolTip("Original: the uploaded bytes. Resized: the CDN's re-encoded JPEG. Videos are always original.")
        self._select(self.quality, s.get("quality") == 2)
        form.addRow("Quality", self.quality)

        self.workers = QSpinBox()
        self.workers.setRange(1, 20)
        self.workers.setValue(int(s.get("concurrency")))
        self.workers.setToolTip("Files this job transfers at the same time (1-20)")
        form.addRow("Workers", self.workers)

        self.output = FolderPicker("Download folder")
        self.output.set_path(ctx.default_output_dir())
        self.output.edit.setToolTip("Where the files go; each query gets its own subfolder")
        form.addRow("Save to", self.output)

        self.layout_choice = QComboBox()
        for value, label, tip in LAYOUTS:
            self.layout_choice.addItem(label, value)
            self.layout_choice.setItemData(self.layout_choice.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.layout_choice.setToolTip("How files are arranged in the download folder")
        form.addRow("Layout", self.layout_choice)

        self.videos = QComboBox()
        for value, label in VIDEO_OPTIONS:
            self.videos.addItem(label, value)
        form.addRow("Media", self.videos)

        self.max_images = QSpinBox()
        self.max_images.setRange(0, 1_000_000)
        self.max_images.setSpecialValueText("No limit")
        self.max_images.setSingleStep(50)
        self.max_images.setToolTip("Stop after this many new downloads (0: no limit)")
        form.addRow("Max images", self.max_images)
        form_card.body.addLayout(form)

        self.deep_scan = QCheckBox("Deep scan (users with more than ~50,000 posts)")
        self.deep_scan.setToolTip("Extra passes (oldest first, SFW/NSFW, per model version) past the service's listing cap")
        form_card.body.addWidget(self.deep_scan)
        self.redownload = QCheckBox("Download again what the library already has")
        self.redownload.setToolTip("Normally files already in the library are skipped (or linked into this query's folder)")
        form_card.body.addWidget(self.redownload)

        self.error = QLabel("")
        self.error.setObjectName("Error")
        self.error.setWordWrap(True)
        self.error.hide()
        form_card.body.addWidget(self.error)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Start download")
        self.start_button.setObjectName("Primary")
        icons.set_icon(self.start_button, "download", "#ffffff")
        self.start_button.setToolTip("Add a download job (Ctrl+Enter). Several jobs can run at once.")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        buttons.addWidget(self.start_button)
        form_card.body.addLayout(buttons)

        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        holder_layout.addWidget(form_card)
        holder_layout.addStretch(1)
        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setFrameShape(QFrame.Shape.NoFrame)
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form_scroll.setWidget(holder)
        form_scroll.setMinimumWidth(400)
        self.splitter.addWidget(form_scroll)

        # -- jobs --
        self.jobs_panel = JobsPanel(
            ctx.jobs, ("download",), "No jobs yet — enter a username and press Start.", empty_icon="download"
        )
        self.jobs_count = self.jobs_panel.jobs_count
        self.clear_button = self.jobs_panel.clear_button
        self.job_list = self.jobs_panel.job_list
        self.resume_banner = self._make_resume_banner()
        self.jobs_panel.insert_under_title(self.resume_banner)
        self.splitter.addWidget(self.jobs_panel)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([440, 640])

        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.start)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.start)
        self._on_mode(1)
        self._resumable: list[Any] = []

    # -- form helpers ------------------------------------------------------------------------------

    @staticmethod
    def _select(combo: QComboBox, value: Any) -> None:
        i = combo.findData(value)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _on_mode(self, mode: DownloadMode) -> None:
        self.identifiers.setPlaceholderText(PLACEHOLDERS[mode])
        self.deep_scan.setEnabled(mode == DownloadMode.USERNAME)
        self.deep_scan.setToolTip(
            "Extra passes past the service's ~50,000-item listing cap"
            if mode == DownloadMode.USERNAME else "Deep scan only applies to usernames"
        )
        self.error.hide()

    def _on_text(self, text: str) -> None:
        self.error.hide()
        if not looks_like_link(text):
            return
        mode, new_text, note = rewrite_pasted(self.mode.value(), text)
        if mode != self.mode.value():
            self.mode.set_value(mode)
        if new_text != text:
            self.identifiers.blockSignals(True)
            self.identifiers.setText(new_text)
            self.identifiers.setCursorPosition(len(new_text))
            self.identifiers.blockSignals(False)
        self.input_note.setText(note or "Link understood.")

    def accept_text(self, text: str) -> bool:
        """Dropped or pasted text from the window: add it to the identifiers."""
        text = text.strip()
        if not text:
            return False
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        current = self.identifiers.text().strip()
        if current and parse_pasted(lines[0]) is not None:
            target = parse_pasted(lines[0])
            if target is not None and target.mode not in (None, self.mode.value()):
                current = ""  # a link of another kind replaces what was typed
        combined = ", ".join([current, *lines]) if current else ", ".join(lines)
        self.identifiers.setText(combined)
        self.identifiers.setFocus()
        return True

    def search_widget(self) -> QWidget:
        return self.identifiers

    # -- building params ---------------------------------------------------------------------------

    def params(self) -> DownloadParams:
        mode = DownloadMode(self.mode.value())
        identifiers = validate_identifiers(mode, self.identifiers.text())
        output = self.output.path()
        if not output:
            raise InputError("Choose a folder to save to.")
        layout_value = self.layout_choice.currentData()
        videos = self.videos.currentData()
        return DownloadParams(
            mode=mode,
            identifiers=identifiers,
            output_dir=output,
            original=bool(self.quality.currentData()),
            nsfw=self.nsfw.currentData(),
            layout="organized" if layout_value == "organized" else "classic",
            sort=layout_value != "nosort",
            redownload=self.redownload.isChecked(),
            max_images=self.max_images.value() or None,
            no_videos=videos == "no_videos",
            videos_only=videos == "videos_only",
            deep_scan=self.deep_scan.isChecked() and mode == DownloadMode.USERNAME,
            pg13_is_nsfw=bool(self.ctx.settings.get("pg13_is_nsfw")),
        )

    def start(self) -> None:
        try:
            params = self.params()
        except InputError as exc:
            self.error.setText(str(exc))
            self.error.show()
            self.identifiers.setFocus()
            return
        self.error.hide()
        self.start_button.setEnabled(False)

        async def go() -> None:
            try:
                await self.start_download(params, self.workers.value())
                self.identifiers.clear()
                self.input_note.setText("Job added. You can start another one while it runs.")
            finally:
                self.start_button.setEnabled(True)

        spawn(go(), name="start-download")

    @staticmethod
    def title_for(params: DownloadParams) -> str:
        prefix = TITLE_PREFIX.get(params.mode, "")
        ids = params.identifiers
        shown = ", ".join(ids[:4]) + (f" +{len(ids) - 4} more" if len(ids) > 4 else "")
        return f"{prefix} {shown}".strip()

    async def start_download(self, params: DownloadParams, workers: int, *, job_id: str | None = None) -> JobHandle:
        """Create (or reuse, when resuming) the job record and run a DownloadJob."""
        ctx = self.ctx
        library = await ctx.library()
        created: set[str] = set()
        if job_id is None:
            try:
                created = await save_queries(library, params)
                self.ctx.queriesChanged.emit()
            except Exception as exc:  # saving for "Check for new" is a convenience
                LOG.warning("could not save the queries of %s: %s", params.identifiers, exc)
            job_id = await library.create_job("download", params.to_dict(), owner=new_owner(), state="queued")
        else:  # resuming: this process owns the job now (so a crash marks it interrupted again)
            await library.update_job(job_id, owner=new_owner())
        client = ctx.new_client(concurrency=workers)
        # `workers` is the job's transfer slots (like --semaphore_limit); the job sizes its own
        # worker pool from them.
        job = DownloadJob(library, client, params, job_id=job_id)

        async def cleanup() -> None:
            await client.close()
            if created:
                try:
                    if await forget_not_found(library, params, job.summary(), created):
                        self.ctx.queriesChanged.emit()
                except Exception as exc:
                    LOG.warning("could not tidy the saved queries: %s", exc)

        handle = ctx.jobs.start(
            job,
            kind="download",
            title=self.title_for(params),
            params=params,
            output_dir=params.output_dir,
            retry=self._retry,
            cleanup=cleanup,
        )
        LOG.info("download job %s started: %s", job_id, handle.title)
        return handle

    async def _retry(self, handle: JobHandle) -> JobHandle | None:
        params = handle.params
        client = getattr(handle.job, "client", None)
        workers = client.options.concurrency if client is not None else self.workers.value()
        return await self.start_download(DownloadParams.from_dict(params.to_dict()), workers)

    # -- resuming jobs from an earlier session -----------------------------------------------------

    def _make_resume_banner(self) -> QFrame:
        banner = QFrame()
        banner.setObjectName("Card")
        row = QHBoxLayout(banner)
        row.setContentsMargins(12, 8, 12, 8)
        icon = QLabel()
        icons.set_pixmap(icon, "clock", 18)
        self.resume_text = QLabel("")
        self.resume_text.setWordWrap(True)
        resume = QPushButton("Resume")
        icons.set_icon(resume, "play")
        resume.setToolTip("Continue these jobs; what is already downloaded is skipped")
        resume.clicked.connect(self._resume_all)
        dismiss = QPushButton("Not now")
        dismiss.clicked.connect(banner.hide)
        row.addWidget(icon)
        row.addWidget(self.resume_text, 1)
        row.addWidget(resume)
        row.addWidget(dismiss)
        banner.hide()
        self.resume_all_button = resume
        return banner

    async def load_unfinished(self) -> None:
        """Offer to resume download jobs that an earlier session did not finish."""
        library = await self.ctx.library()
        await library.mark_interrupted_jobs()
        rows = await library.list_jobs(states=("interrupted",), kind="download")
        running = {h.job_id for h in self.ctx.jobs.handles}
        self._resumable = [r for r in rows if r.id not in running][:20]
        if self._resumable:
            names = ", ".join(self.title_for(DownloadParams.from_dict(r.params)) for r in self._resumable[:3])
            more = f" and {len(self._resumable) - 3} more" if len(self._resumable) > 3 else ""
            self.resume_text.setText(
                f"{plural(len(self._resumable), 'download')} did not finish last time: {names}{more}."
            )
            self.resume_banner.show()

    def _resume_all(self) -> None:
        rows, self._resumable = self._resumable, []
        self.resume_banner.hide()

        async def go() -> None:
            for row in rows:
                params = DownloadParams.from_dict(row.params)
                await self.start_download(params, int(self.ctx.settings.get("concurrency")), job_id=row.id)

        spawn(go(), name="resume-downloads")

    # -- state -------------------------------------------------------------------------------------

    def save_state(self) -> dict[str, Any]:
        return {
            "splitter": bytes(self.splitter.saveState().toBase64()).decode("ascii"),
            "mode": self.mode.value(),
            "output": self.output.path(),
            "layout": self.layout_choice.currentData(),
            "videos": self.videos.currentData(),
            "workers": self.workers.value(),
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        if state.get("splitter"):
            self.splitter.restoreState(QByteArray.fromBase64(state["splitter"].encode("ascii")))
        if state.get("mode") in {mode.value for mode in DownloadMode}:
            self.mode.set_value(DownloadMode(state["mode"]))
        if state.get("output"):
            self.output.set_path(state["output"])
        if state.get("layout"):
            self._select(self.layout_choice, state["layout"])
        if state.get("videos"):
            self._select(self.videos, state["videos"])
        if isinstance(state.get("workers"), int):
            self.workers.setValue(state["workers"])
