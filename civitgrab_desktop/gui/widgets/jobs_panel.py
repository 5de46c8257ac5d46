"""The job side of the Download, Tags, Convert and Saved-queries pages: the cards of one kind of job,
newest first, with an empty state (`JobList`), under a title with "N jobs running" and "Clear
finished" (`JobsPanel`)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.bridge import JobHandle, JobManager
from civitgrab_desktop.gui.util import plural
from civitgrab_desktop.gui.widgets.common import section_title
from civitgrab_desktop.gui.widgets.job_card import JobCard


class JobList(QScrollArea):
    """The cards of one kind of job, newest first, with an empty state."""

    changed = Signal()  # a card was added or dismissed

    def __init__(
        self,
        manager: JobManager,
        kinds: tuple[str, ...],
        empty_text: str,
        parent: QWidget | None = None,
        *,
        empty_icon: str = "info",
    ):
        super().__init__(parent)
        self.setObjectName("JobScroll")
        self.manager = manager
        self.kinds = kinds
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("JobListBody")
        self._layout = QVBoxLayout(body)
        self._layout.setContentsMargins(0, 0, 4, 0)
        self._layout.setSpacing(10)
        self.empty = QWidget()
        empty_col = QVBoxLayout(self.empty)
        empty_col.setContentsMargins(0, 48, 0, 0)
        empty_col.setSpacing(6)
        self.empty_icon = QLabel()
        self.empty_icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        icons.set_pixmap(self.empty_icon, empty_icon, 44, "muted")
        self.empty_label = QLabel(empty_text)
        self.empty_label.setObjectName("EmptyState")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        empty_col.addWidget(self.empty_icon)
        empty_col.addWidget(self.empty_label)
        self._layout.addWidget(self.empty)
        self._layout.addStretch(1)
        self.setWidget(body)
        self.cards: dict[str, JobCard] = {}
        manager.jobAdded.connect(self._on_added)
        for handle in manager.handles:
            self._on_added(handle)

    def _on_added(self, handle: JobHandle) -> None:
        if handle.kind not in self.kinds or handle.job_id in self.cards:
            return
        card = JobCard(handle, self.manager)
        card.dismissed.connect(self._on_dismissed)
        self.cards[handle.job_id] = card
        self._layout.insertWidget(1, card)  # after the (hidden) empty label: newest on top
        self.empty.hide()
        self.ensureWidgetVisible(card)
        self.changed.emit()

    def _on_dismissed(self, handle: JobHandle) -> None:
        card = self.cards.pop(handle.job_id, None)
        if card is not None:
            card.hide()
            card.deleteLater()
        self.manager.forget(handle)
        self.empty.setVisible(not self.cards)
        self.changed.emit()

    def card_for(self, handle: JobHandle) -> JobCard | None:
        return self.cards.get(handle.job_id)

    def clear_finished(self) -> int:
        """Dismiss every card whose job has ended; returns how many."""
        done = [card.handle for card in self.cards.values() if not card.handle.running]
        for handle in done:
            self._on_dismissed(handle)
        return len(done)

    def finished_count(self) -> int:
        return sum(1 for card in self.cards.values() if not card.handle.running)


class JobsPanel(QWidget):
    """The right-hand side of the job pages: a title, "N jobs running", "Clear finished" and the
    cards (`job_list`). Pages may insert a widget under the title (`insert_under_title`)."""

    def __init__(self, manager: JobManager, kinds: tuple[str, ...], empty_text: str, *, title: str = "Jobs",
                 empty_icon: str = "info", parent: QWidget | None = None):
        super().__init__(parent)
        self.manager = manager
        self.kinds = kinds
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 0, 0, 0)
        self._layout.setSpacing(8)
        head = QHBoxLayout()
        head.addWidget(section_title(title))
        head.addStretch(1)
        self.jobs_count = QLabel("")
        self.jobs_count.setObjectName("Muted")
        head.addWidget(self.jobs_count)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setFlat(True)
        self.clear_button.setToolTip("Remove the cards of finished jobs (their files and records stay)")
        self.clear_button.setEnabled(False)
        self.clear_button.hide()
        head.addWidget(self.clear_button)
        self._layout.addLayout(head)
        self.job_list = JobList(manager, kinds, empty_text, empty_icon=empty_icon)
        self._layout.addWidget(self.job_list, 1)
        self.clear_button.clicked.connect(self.job_list.clear_finished)
        self.job_list.changed.connect(self.update_counts)
        manager.jobAdded.connect(self.update_counts)
        manager.jobFinished.connect(self.update_counts)

    def insert_under_title(self, widget: QWidget) -> None:
        self._layout.insertWidget(1, widget)

    def update_counts(self, *_args) -> None:
        active = sum(len(self.manager.active(kind)) for kind in self.kinds)
        self.jobs_count.setText(f"{plural(active, 'job')} running" if active else "")
        self.clear_button.setEnabled(self.job_list.finished_count() > 0)
        self.clear_button.setVisible(bool(self.job_list.cards))
