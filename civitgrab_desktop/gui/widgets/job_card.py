"""A job as a card: what it works on, progress with counts, bytes, speed and ETA, its state, the
Pause / Resume / Stop buttons, a live countdown while the service rate-limits us, and when it ends,
its summary with expandable details and "Retry failures"."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.bridge import JobHandle, JobManager
from civitgrab_desktop.gui.util import human_bytes, human_duration, open_folder, spawn
from civitgrab_desktop.gui.widgets.job_summary import DONE_WORD, summary_line, summary_problems
from civitgrab_desktop.jobs.job import JobState, ProgressEvent

KIND_ICON = {"download": "download", "tags": "tag", "convert": "convert", "update": "retry",
             "refresh_metadata": "retry"}
KIND_LABEL = {"download": "Download", "tags": "Tags", "convert": "Convert", "update": "Check for new",
              "refresh_metadata": "Refresh metadata"}
STATE_TEXT = {
    "queued": ("Queued", "muted"),
    "running": ("Running", None),
    "paused": ("Paused", "warning"),
    "stopping": ("Stopping…", "warning"),
    "stopped": ("Stopped", "muted"),
    "done": ("Done", "success"),
    "failed": ("Failed", "danger"),
    "interrupted": ("Interrupted", "warning"),
}


def _chip(text: str, tone: str | None) -> QLabel:
    chip = QLabel(text)
    chip.setObjectName("Chip")
    chip.setProperty("tone", tone or "")
    chip.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    return chip


class JobCard(QFrame):
    dismissed = Signal(object)  # JobHandle

    def __init__(self, handle: JobHandle, manager: JobManager, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("JobCard")
        self.handle = handle
        self.manager = manager
        self.bridge = handle.bridge
        self._word = DONE_WORD.get(handle.kind, "done")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(14, 12, 14, 12)
        outer.setSpacing(6)

        # header: icon, title, chip
        head = QHBoxLayout()
        head.setSpacing(8)
        self.kind_icon = QLabel()
        icons.set_pixmap(self.kind_icon, KIND_ICON.get(handle.kind, "info"), 18)
        self.title = QLabel(handle.title)
        self.title.setObjectName("JobTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setToolTip(handle.title)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.chip = _chip("Queued", "muted")
        head.addWidget(self.kind_icon)
        head.addWidget(self.title, 1)
        head.addWidget(self.chip)
        outer.addLayout(head)

        self.where = QLabel(self._where_text())
        self.where.setObjectName("Hint")
        self.where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        outer.addWidget(self.where)

        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setRange(0, 0)
        outer.addWidget(self.bar)

        stats = QHBoxLayout()
        self.counts = QLabel("Listing…")
        self.counts.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.rate = QLabel("")
        self.rate.setObjectName("Muted")
        self.rate.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        stats.addWidget(self.counts, 1)
        stats.addWidget(self.rate)
        outer.addLayout(stats)

        self.status = QLabel("")
        self.status.setObjectName("Hint")
        self.status.setWordWrap(True)
        self.status.hide()
        outer.addWidget(self.status)

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.hide()
        outer.addWidget(self.summary)

        # buttons
        row = QHBoxLayout()
        row.setSpacing(6)
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        icons.set_icon(self.details_button, "chevron-right")
        self.details_button.setToolTip("Show failures with their reasons, skipped items and messages")
        self.details_button.toggled.connect(self._toggle_details)
        row.addWidget(self.details_button)
        row.addStretch(1)
        self.open_button = QPushButton("Open folder")
        icons.set_icon(self.open_button, "folder")
        self.open_button.setToolTip(handle.output_dir or "")
        self.open_button.clicked.connect(self._open_folder)
        self.open_button.setVisible(bool(handle.output_dir))
        self.pause_button = QPushButton("Pause")
        icons.set_icon(self.pause_button, "pause")
        self.pause_button.setToolTip("Pause after the current chunk; the job keeps its place")
        self.pause_button.clicked.connect(lambda: handle.job.pause())
        self.resume_button = QPushButton("Resume")
        icons.set_icon(self.resume_button, "play")
        self.resume_button.setToolTip("Continue where the job paused")
        self.resume_button.clicked.connect(lambda: handle.job.resume())
        self.stop_button = QPushButton("Stop")
        icons.set_icon(self.stop_button, "stop")
        self.stop_button.setToolTip("Stop the job; what is downloaded stays, unfinished files are removed")
        self.stop_button.clicked.connect(lambda: handle.job.stop())
        self.retry_button = QPushButton("Retry failures")
        icons.set_icon(self.retry_button, "retry")
        self.retry_button.setToolTip("Start the same job again: what is done is skipped, failures are tried again")
        self.retry_button.clicked.connect(self._retry)
        self.dismiss_button = QPushButton("Dismiss")
        icons.set_icon(self.dismiss_button, "close")
        self.dismiss_button.setToolTip("Remove this card (the job's files and records stay)")
        self.dismiss_button.clicked.connect(self._dismiss)
        for b in (self.open_button, self.pause_button, self.resume_button, self.stop_button, self.retry_button,
                  self.dismiss_button):
            row.addWidget(b)
        outer.addLayout(row)

        self.details = QTreeWidget()
        self.details.setHeaderHidden(True)
        self.details.setColumnCount(2)
        self.details.setRootIsDecorated(True)
        self.details.itemExpanded.connect(self._fit_details)
        self.details.itemCollapsed.connect(self._fit_details)
        self.details.hide()
        outer.addWidget(self.details)

        self._host = ""  # the host of the last rate-limit wait
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

        self.bridge.stateChanged.connect(self._on_state)
        self.bridge.progressed.connect(self._on_progress)
        self.bridge.rateLimited.connect(self._on_rate_limited)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.messageLogged.connect(self._on_message)

        # catch up with what happened before the card existed
        if self.bridge.last_progress is not None:
            self._on_progress(self.bridge.last_progress)
        self._on_state(self.bridge.state)
        if self.bridge.summary is not None:
            self._on_finished(self.bridge.state, self.bridge.summary)

    # -- text --------------------------------------------------------------------------------------

    def _where_text(self) -> str:
        started = time.strftime("%H:%M", time.localtime(self.handle.started_at))
        text = f"{KIND_LABEL.get(self.handle.kind, self.handle.kind)} · started {started}"
        if self.handle.output_dir:
            text += f" · {self.handle.output_dir}"
        return text

    def _set_chip(self, text: str, tone: str | None) -> None:
        self.chip.setText(text)
        if self.chip.property("tone") != (tone or ""):
            self.chip.setProperty("tone", tone or "")
            self.chip.style().unpolish(self.chip)
            self.chip.style().polish(self.chip)

    # -- events ------------------------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        text, tone = STATE_TEXT.get(state, (state.capitalize(), None))
        finished = JobState(state).finished
        waiting = self.bridge.waiting_for() > 0 and state == "running"
        if not waiting:
            self._set_chip(text, tone)
        self.pause_button.setVisible(not finished and state != "paused")
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setVisible(state == "paused")
        self.stop_button.setVisible(not finished)
        self.stop_button.setEnabled(state in ("queued", "running", "paused"))
        self.retry_button.setVisible(False)
        self.dismiss_button.setVisible(finished)
        if state == "paused":
            self.rate.setText("paused")
        if finished:
            self._timer.stop()
            self.status.hide()

    def _on_progress(self, p: ProgressEvent) -> None:
        finished = p.done + p.failed + p.skipped
        if p.total:
            self.bar.setRange(0, max(1, p.total))
            self.bar.setValue(min(finished, p.total))
            counts = f"{finished:,} of {p.total:,}"
        else:
            self.bar.setRange(0, 0)
            counts = f"{finished:,} so far"
        extras = [f"{p.done:,} {self._word}"]
        if p.skipped:
            extras.append(f"{p.skipped:,} skipped")
        if p.failed:
            extras.append(f"{p.failed:,} failed")
        if p.bytes_done:
            extras.append(human_bytes(p.bytes_done))
        self.counts.setText(f"{counts} · " + " · ".join(extras))
        if self.bridge.state == "paused":
            self.rate.setText("paused")
        elif self.bridge.state == "running":
            rate = []
            if p.speed_bps > 0:
                rate.append(f"{human_bytes(p.speed_bps)}/s")
            elif p.items_per_s > 0:
                rate.append(f"{p.items_per_s:.1f}/s")
            if p.eta_s is not None and p.total:
                rate.append(f"ETA {human_duration(p.eta_s)}")
            self.rate.setText(" · ".join(rate))
        if self.bridge.waiting_for() > 0:
            self.rate.setText("")  # an ETA would be wrong while the service makes us wait
        if p.current and self.bridge.state == "running" and self.bridge.waiting_for() <= 0:
            self.status.setText(f"Working on {p.current}")
            self.status.show()

    def _on_rate_limited(self, host: str, seconds: float, reason: str) -> None:
        self._host = host
        self._tick()
        self._timer.start()

    def _tick(self) -> None:
        left = self.bridge.waiting_for()
        if left <= 0 or self.bridge.is_finished:
            self._timer.stop()
            if not self.bridge.is_finished:
                text, tone = STATE_TEXT.get(self.bridge.state, (self.bridge.state, None))
                self._set_chip(text, tone)
                self.status.hide()
            return
        secs = int(left + 0.999)
        reason = self.bridge.wait_reason or "rate limited"
        host = self._host or "the service"
        self._set_chip(f"Waiting {secs} s", "warning")
        self.rate.setText("")  # an ETA would be wrong while the service makes us wait
        self.status.setText(f"waiting {secs} s ({reason}) — {host} asked us to slow down; the job continues by itself")
        self.status.show()

    def _on_message(self, level: int, text: str) -> None:
        if level >= logging.WARNING and not self.bridge.is_finished:
            self.status.setText(text)
            self.status.show()

    def _on_finished(self, state: str, summary: dict) -> None:
        self._on_state(state)
        problems = summary_problems(summary)
        if state == "done" and problems:
            self._set_chip(f"Done · {problems} problem{'s' if problems != 1 else ''}", "warning")
        p = self.bridge.last_progress
        if p is None or not p.total:
            self.bar.setRange(0, 1)
            self.bar.setValue(1 if state == "done" and not problems else 0)
        self.rate.setText("")
        if p is None or (not p.total and not (p.done + p.failed + p.skipped)):
            self.counts.setText("Nothing was listed")
        self.summary.setText(summary_line(self.handle.kind, summary))
        self.summary.setObjectName("Error" if state == "failed" else "")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        self.summary.show()
        failed = summary.get("failed", 0)
        target_problem = any(t.get("status") == "error" for t in summary.get("targets") or [])
        incomplete = state in ("stopped", "interrupted", "failed")
        if self.handle.retry is not None and (failed or target_problem or incomplete):
            self.retry_button.setText("Retry failures" if failed else "Run again")
            self.retry_button.setVisible(True)
        self._fill_details(summary)

    # -- details -----------------------------------------------------------------------------------

    def _fill_details(self, summary: dict | None) -> None:
        tree = self.details
        tree.clear()
        if summary is None:
            summary = self.handle.job.summary()
        failures = summary.get("failures") or []
        if failures:
            top = QTreeWidgetItem([f"Failed ({len(failures):,})", ""])
            for f in failures[:1000]:
                child = QTreeWidgetItem([str(f.get("item", "")), str(f.get("reason", ""))])
                child.setToolTip(1, str(f.get("reason", "")))
                top.addChild(child)
            tree.addTopLevelItem(top)
            top.setExpanded(True)
        reasons = summary.get("skip_reasons") or {}
        if reasons:
            top = QTreeWidgetItem([f"Skipped ({summary.get('skipped', 0):,})", ""])
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
                top.addChild(QTreeWidgetItem([reason, f"{n:,}"]))
            tree.addTopLevelItem(top)
        targets = summary.get("targets") or []
        if targets:
            top = QTreeWidgetItem([f"Queries ({len(targets)})", ""])
            for t in targets:
                detail = f"{t.get('status')}: listed {t.get('listed', 0):,}, downloaded {t.get('downloaded', 0):,}"
                if t.get("linked"):
                    detail += f", linked {t['linked']:,}"
                if t.get("reason"):
                    detail += f" — {t['reason']}"
                top.addChild(QTreeWidgetItem([str(t.get("identifier")), detail]))
            tree.addTopLevelItem(top)
            top.setExpanded(not failures)
        if self.bridge.messages:
            top = QTreeWidgetItem([f"Messages ({len(self.bridge.messages)})", ""])
            for level, text in list(self.bridge.messages)[-200:]:
                child = QTreeWidgetItem([logging.getLevelName(level).capitalize(), text])
                child.setToolTip(1, text)
                top.addChild(child)
            tree.addTopLevelItem(top)
        if tree.topLevelItemCount() == 0:
            tree.addTopLevelItem(QTreeWidgetItem(["Nothing to report yet.", ""]))
        tree.resizeColumnToContents(0)
        self._fit_details()

    def _fit_details(self) -> None:
        tree = self.details
        rows = 0
        for i in range(tree.topLevelItemCount()):
            top = tree.topLevelItem(i)
            rows += 1 + (top.childCount() if top.isExpanded() else 0)
        row_height = max(18, tree.sizeHintForRow(0) if tree.topLevelItemCount() else 18)
        tree.setFixedHeight(min(220, max(48, rows * row_height + 8)))

    def _toggle_details(self, shown: bool) -> None:
        icons.set_icon(self.details_button, "chevron-down" if shown else "chevron-right")
        if shown:
            self._fill_details(self.bridge.summary)
        self.details.setVisible(shown)

    # -- actions -----------------------------------------------------------------------------------

    def _open_folder(self) -> None:
        if self.handle.output_dir:
            open_folder(self.handle.output_dir)

    def _retry(self) -> None:
        if self.handle.retry is None:
            return
        self.retry_button.setEnabled(False)

        async def go() -> None:
            try:
                await self.handle.retry(self.handle)
            finally:
                self.retry_button.setEnabled(True)

        spawn(go(), name=f"retry-{self.handle.job_id}")

    def _dismiss(self) -> None:
        self.dismissed.emit(self.handle)
