"""Saved queries: every download saves its query (mode, identifier, options). Here they are
listed, checked for new items ("Check for new": newest first, stopping after N known items in a
row), edited, paused and removed; an optional schedule checks them every N hours while the app
runs (Settings → General). The update jobs are the CLI's (`civitgrab-cli update`, jobs/update.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)
from shiboken6 import isValid

from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.dialogs import confirm
from civitgrab_desktop.gui.panels.download_input import LAYOUTS, NSFW_OPTIONS, VIDEO_OPTIONS
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.gui.widgets.common import Card, FolderPicker, section_title
from civitgrab_desktop.gui.widgets.jobs_panel import JobsPanel
from civitgrab_desktop.gui.widgets.page import Page
from civitgrab_desktop.jobs.job import JobState
from civitgrab_desktop.jobs.update import create_update_job, query_label, record_update

LOG = logging.getLogger(__name__)

COLUMNS = ("Query", "Options", "Status", "Last checked", "Last result")
MODE_WORD = {
    DownloadMode.USERNAME: "User",
    DownloadMode.MODEL: "Model",
    DownloadMode.TAG: "Tag",
    DownloadMode.MODEL_VERSION: "Version",
    DownloadMode.POST: "Post",
    DownloadMode.IMAGE: "Image",
}
NSFW_SHORT = {"none": "SFW only", "soft": "up to PG-13", "mature": "up to R", "x": "all levels"}
HOUR_MS = 3_600_000


def options_text(options: dict[str, Any]) -> str:
    parts = [NSFW_SHORT.get(options.get("nsfw") or "x", "all levels")]
    parts.append("original" if options.get("original", True) else "resized")
    if options.get("layout") == "organized":
        parts.append("organized")
    elif options.get("sort") is False:
        parts.append("no sort")
    if options.get("no_videos"):
        parts.append("images only")
    elif options.get("videos_only"):
        parts.append("videos only")
    if options.get("max_images"):
        parts.append(f"max {options['max_images']:,}")
    return " · ".join(parts)


def result_text(result: dict[str, Any] | None) -> str:
    if not result:
        return ""
    text = f"{result.get('new', 0):,} new"
    if result.get("failed"):
        text += f", {result['failed']:,} failed"
    if result.get("state") not in (None, "done"):
        text += f" ({result['state']})"
    return text


def when_text(iso: str | None) -> str:
    if not iso:
        return "never"
    return iso.replace("T", " ")[:16]


class QueryOptionsDialog(QDialog):
    """Edit what a saved query downloads: the folder, NSFW levels, quality, layout, media, cap."""

    def __init__(self, query, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Edit {query_label(query)}")
        self.options = dict(query["options"])
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.output = FolderPicker("Download folder")
        self.output.set_path(self.options.get("output_dir") or "")
        form.addRow("Save to", self.output)
        self.nsfw = self._combo([(v, label) for v, label in NSFW_OPTIONS], self.options.get("nsfw") or "x")
        form.addRow("NSFW levels", self.nsfw)
        self.quality = self._combo([(True, "Original (full resolution)"), (False, "Resized (smaller JPEG)")],
                                   bool(self.options.get("original", True)))
        form.addRow("Quality", self.quality)
        layout_now = "organized" if self.options.get("layout") == "organized" else (
            "nosort" if self.options.get("sort") is False else "sorted")
        self.layout_choice = self._combo([(v, label) for v, label, _tip in LAYOUTS], layout_now)
        form.addRow("Layout", self.layout_choice)
        media_now = "no_videos" if self.options.get("no_videos") else ("videos_only" if self.options.get("videos_only") else "all")
        self.videos = self._combo(VIDEO_OPTIONS, media_now)
        form.addRow("Media", self.videos)
        self.max_images = QSpinBox()
        self.max_images.setRange(0, 1_000_000)
        self.max_images.setSpecialValueText("No limit")
        self.max_images.setValue(int(self.options.get("max_images") or 0))
        form.addRow("Max images", self.max_images)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _combo(items, current) -> QComboBox:
        combo = QComboBox()
        for value, label in items:
            combo.addItem(label, value)
        i = combo.findData(current)
        combo.setCurrentIndex(max(0, i))
        return combo

    def edited_options(self) -> dict[str, Any]:
        layout_value = self.layout_choice.currentData()
        videos = self.videos.currentData()
        return {
            **self.options,
            "output_dir": self.output.path() or self.options.get("output_dir"),
            "nsfw": self.nsfw.currentData(),
            "original": bool(self.quality.currentData()),
            "layout": "organized" if layout_value == "organized" else "classic",
            "sort": layout_value != "nosort",
            "no_videos": videos == "no_videos",
            "videos_only": videos == "videos_only",
            "max_images": self.max_images.value() or None,
        }


class QueriesPage(Page):
    key = "queries"
    title = "Saved queries"
    subtitle = "Every download is remembered here. Check them for new items, cheaply: newest first, stopping at what you have."
    icon_name = "retry"

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.queries: list[Any] = []
        self._checking = False
        self._next_check: float | None = None
        self.check_task: asyncio.Task | None = None

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.root.addWidget(self.splitter, 1)

        card = Card()
        head = QHBoxLayout()
        head.addWidget(section_title("Queries"))
        head.addStretch(1)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        head.addWidget(self.count_label)
        card.body.addLayout(head)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _index: self.edit_selected())
        card.body.addWidget(self.table, 1)

        self.empty = QLabel("No saved queries yet. Every download you start is saved here.")
        self.empty.setObjectName("EmptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        card.body.addWidget(self.empty)

        buttons = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        icons.set_icon(self.pause_button, "pause")
        self.pause_button.setToolTip("Paused queries are skipped by Check for new and by the schedule")
        self.pause_button.clicked.connect(self.toggle_pause_selected)
        self.edit_button = QPushButton("Edit…")
        icons.set_icon(self.edit_button, "settings")
        self.edit_button.setToolTip("Change the folder and options this query downloads with")
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button = QPushButton("Remove")
        icons.set_icon(self.remove_button, "trash")
        self.remove_button.setToolTip("Forget the query (its files and library records stay)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.check_selected_button = QPushButton("Check selected")
        icons.set_icon(self.check_selected_button, "retry")
        self.check_selected_button.clicked.connect(self.check_selected)
        self.check_button = QPushButton("Check for new")
        self.check_button.setObjectName("Primary")
        icons.set_icon(self.check_button, "retry", "#ffffff")
        self.check_button.setToolTip("Check every active query for new items (Ctrl+U)")
        self.check_button.clicked.connect(self.check_all)
        for b in (self.pause_button, self.edit_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.check_selected_button)
        buttons.addWidget(self.check_button)
        card.body.addLayout(buttons)

        self.schedule_label = QLabel("")
        self.schedule_label.setObjectName("Muted")
        self.schedule_label.setWordWrap(True)
        card.body.addWidget(self.schedule_label)
        self.splitter.addWidget(card)

        self.jobs_panel = JobsPanel(ctx.jobs, ("update",), "No checks yet — press Check for new.",
                                    title="Checks", empty_icon="retry")
        self.job_list = self.jobs_panel.job_list
        self.splitter.addWidget(self.jobs_panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([560, 500])

        self.schedule_timer = QTimer(self)
        self.schedule_timer.timeout.connect(self.scheduled_check)
        self.minute_timer = QTimer(self)  # keeps "next check in …" current
        self.minute_timer.setInterval(60_000)
        self.minute_timer.timeout.connect(self._show_schedule)
        ctx.settingsChanged.connect(self.apply_schedule)
        ctx.queriesChanged.connect(lambda: spawn(self.refresh(), name="queries-refresh"))
        self.apply_schedule()
        self._selection_changed()
        self._show_rows()

    # -- listing -----------------------------------------------------------------------------------

    def activated(self) -> None:
        spawn(self.refresh(), name="queries-refresh")

    async def refresh(self) -> None:
        library = await self.ctx.library()
        queries = await library.list_queries()
        if not isValid(self.table):
            return
        self.queries = queries
        self._show_rows()

    def _show_rows(self) -> None:
        selected = {q["id"] for q in self.selected()}
        self.table.setRowCount(len(self.queries))
        for row, q in enumerate(self.queries):
            mode = MODE_WORD.get(q["mode"], "?")
            cells = (
                f"{mode}  {q['identifier']}",
                options_text(q["options"]),
                "Paused" if q["paused"] else "Active",
                when_text(q["last_run_at"]),
                result_text(q["last_result"]),
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, q["id"])
                if col == 0:
                    item.setToolTip(f"{query_label(q)} → {q['options'].get('output_dir') or 'default folder'}")
                if q["paused"]:
                    item.setForeground(self.palette().placeholderText())
                self.table.setItem(row, col, item)
            if q["id"] in selected:
                self.table.selectRow(row)
        active = sum(1 for q in self.queries if not q["paused"])
        self.count_label.setText(f"{plural(len(self.queries), 'query', 'queries')} · {active:,} active" if self.queries else "")
        self.table.setVisible(bool(self.queries))
        self.empty.setVisible(not self.queries)
        self._selection_changed()

    def selected(self) -> list[Any]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.queries[r] for r in rows if r < len(self.queries)]

    def _selection_changed(self) -> None:
        chosen = self.selected()
        self.edit_button.setEnabled(len(chosen) == 1)
        self.pause_button.setEnabled(bool(chosen))
        self.remove_button.setEnabled(bool(chosen))
        all_paused = bool(chosen) and all(q["paused"] for q in chosen)
        self.pause_button.setText("Resume" if all_paused else "Pause")
        icons.set_icon(self.pause_button, "play" if all_paused else "pause")
        self.check_button.setEnabled(not self._checking and any(not q["paused"] for q in self.queries))
        self.check_selected_button.setEnabled(bool(chosen) and not self._checking)
        self.check_button.setText("Checking…" if self._checking else "Check for new")

    # -- editing -----------------------------------------------------------------------------------

    def toggle_pause_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        pause = not all(q["paused"] for q in chosen)

        async def go() -> None:
            library = await self.ctx.library()
            for q in chosen:
                await library.update_query(q["id"], paused=pause)
            await self.refresh()

        spawn(go(), name="queries-pause")

    def edit_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        query = chosen[0]
        dialog = QueryOptionsDialog(query, self)
        self.edit_dialog = dialog

        def done(result: int) -> None:
            if result != QDialog.DialogCode.Accepted:
                return
            options = dialog.edited_options()

            async def go() -> None:
                library = await self.ctx.library()
                await library.update_query(query["id"], options=options)
                await self.refresh()

            spawn(go(), name="queries-edit")

        dialog.finished.connect(done)
        dialog.open()

    def remove_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        names = ", ".join(query_label(q) for q in chosen[:3]) + (f" and {len(chosen) - 3} more" if len(chosen) > 3 else "")

        async def go() -> None:
            library = await self.ctx.library()
            for q in chosen:
                await library.delete_query(q["id"])
            await self.refresh()
            self.ctx.statusMessage.emit(f"Removed {plural(len(chosen), 'saved query', 'saved queries')}", 5000)

        self.confirm_box = confirm(
            self,
            title="Remove saved queries",
            text=f"Forget {names}?",
            detail="The files and the library records stay; only the saved query goes.",
            action="Remove",
            icon=QMessageBox.Icon.Question,
            destructive=True,
            on_yes=lambda: spawn(go(), name="queries-remove"),
        )

    # -- checking for new items ----------------------------------------------------------------------

    def check_all(self) -> None:
        self.start_check(None)

    def check_selected(self) -> None:
        chosen = self.selected()
        if chosen:
            self.start_check([q["id"] for q in chosen])

    def start_check(self, ids: list[int] | None, *, reason: str = "") -> asyncio.Task | None:
        """Check the given queries (None: every active one), one after another."""
        if self._checking:
            return None
        self._checking = True
        self._selection_changed()
        self.check_task = spawn(self._check(ids, reason), name="queries-check")
        return self.check_task

    async def _check(self, ids: list[int] | None, reason: str) -> None:
        new_total = failed_total = checked = 0
        try:
            library = await self.ctx.library()
            queries = await library.list_queries()
            queries = [q for q in queries if q["id"] in ids] if ids else [q for q in queries if not q["paused"]]
            stop_after = int(self.ctx.settings.get("update_stop_after"))
            for q in queries:
                client = self.ctx.new_client()
                job = await create_update_job(library, client, q, stop_after)
                handle = self.ctx.jobs.start(
                    job, kind="update", title=f"Check {query_label(q)}", params=job.params,
                    output_dir=job.params.output_dir, cleanup=client.close,
                )
                await asyncio.shield(handle.task)
                summary = handle.bridge.summary or job.summary()
                await record_update(library, q["id"], summary)
                checked += 1
                new_total += summary.get("done", 0)
                failed_total += summary.get("failed", 0)
                await self.refresh()
                if job.state in (JobState.STOPPED, JobState.INTERRUPTED):  # Stop on a card ends the round
                    break
        except RuntimeError as exc:  # the app is closing
            LOG.info("check for new items ended: %s", exc)
        finally:
            self._checking = False
            if isValid(self.table):
                self._selection_changed()
                self._show_schedule()
        if checked:
            message = f"{reason}Checked {plural(checked, 'query', 'queries')}: {new_total:,} new"
            if failed_total:
                message += f", {failed_total:,} failed"
            self.ctx.statusMessage.emit(message, 10_000)

    # -- schedule --------------------------------------------------------------------------------------

    def apply_schedule(self) -> None:
        hours = int(self.ctx.settings.get("update_every_hours") or 0)
        if hours > 0:
            self.schedule_timer.start(hours * HOUR_MS)
            self._next_check = time.time() + hours * 3600
            self.minute_timer.start()
        else:
            self.schedule_timer.stop()
            self.minute_timer.stop()
            self._next_check = None
        self._show_schedule()

    def scheduled_check(self) -> None:
        hours = int(self.ctx.settings.get("update_every_hours") or 0)
        self._next_check = time.time() + hours * 3600 if hours else None
        self.start_check(None, reason="Scheduled check. ")
        self._show_schedule()

    def _show_schedule(self) -> None:
        hours = int(self.ctx.settings.get("update_every_hours") or 0)
        if hours <= 0 or self._next_check is None:
            text = "Automatic checks are off (Settings → General → Check saved queries)."
        else:
            when = time.strftime("%H:%M", time.localtime(self._next_check))
            text = f"Checked automatically every {plural(hours, 'hour')} while civitgrab runs; next at {when}."
        stop_after = int(self.ctx.settings.get("update_stop_after"))
        self.schedule_label.setText(f"{text} A check stops a listing after {stop_after:,} items you already have.")

    def shutdown(self) -> None:
        self.schedule_timer.stop()
        self.minute_timer.stop()

    # -- state -------------------------------------------------------------------------------------

    def save_state(self) -> dict[str, Any]:
        return {"splitter": bytes(self.splitter.saveState().toBase64()).decode("ascii")}

    def restore_state(self, state: dict[str, Any]) -> None:
        if state.get("splitter"):
            self.splitter.restoreState(QByteArray.fromBase64(state["splitter"].encode("ascii")))
