"""The filter bar shared by the gallery and the database view.

Row one: the search box (prompt, username, model and tag names; words match word starts), and
whatever the page adds (sort order, thumbnail size). Row two: media type, NSFW levels, user,
model version, tag, tag state, converted, date range, and Reset. Every change emits
`changed(GalleryQuery)`, debounced while typing.
"""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, QSize, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery.query import MEDIA_TYPES, NSFW_LEVELS, TAG_STATES, GalleryQuery

TYPE_DEBOUNCE_MS = 250


def _line(placeholder: str, tip: str, width: int) -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    edit.setToolTip(tip)
    edit.setClearButtonEnabled(True)
    # its width when there is room; narrower (not off the edge) in a smaller window
    edit.setMaximumWidth(width)
    edit.setMinimumWidth(min(width, 64))
    completer = QCompleter(edit)
    completer.setModel(QStringListModel([], completer))
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setMaxVisibleItems(12)
    edit.setCompleter(completer)
    return edit


class ElidedLabel(QLabel):
    """A one-line label that gives up width when the row is full, eliding its text."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(48, super().minimumSizeHint().height())

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()


class FilterBar(QWidget):
    changed = Signal(object)  # GalleryQuery

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._query = GalleryQuery()
        self._quiet = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(TYPE_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit)

        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(8)

        self.top = QHBoxLayout()
        self.top.setSpacing(8)
        self.search = QLineEdit()
        self.search.setObjectName("GallerySearch")
        self.search.setPlaceholderText("Search prompts, users, models and tags…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icons.icon("search", "muted"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.setToolTip("Every word must start a word of the prompt, username, model name or a tag")
        self.search.textChanged.connect(self._typed)
        self.search.returnPressed.connect(self._emit_now)
        self.top.addWidget(self.search, 1)
        col.addLayout(self.top)

        row = QHBoxLayout()
        row.setSpacing(6)
        self.media_type = QComboBox()
        self.media_type.setToolTip("Media type")
        self.media_type.addItem("All types", None)
        for value, label in MEDIA_TYPES:
            self.media_type.addItem(label, value)
        self.media_type.currentIndexChanged.connect(self._emit_now)
        row.addWidget(self.media_type)

        self.nsfw = QToolButton()
        self.nsfw.setToolTip("NSFW levels to show")
        self.nsfw.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.nsfw_menu = QMenu(self.nsfw)
        self.nsfw_actions: dict[int, QAction] = {}
        for value, _short, long, _colour in NSFW_LEVELS:
            action = self.nsfw_menu.addAction(long)
            action.setCheckable(True)
            action.toggled.connect(self._nsfw_toggled)
            self.nsfw_actions[value] = action
        self.nsfw_menu.addSeparator()
        self.nsfw_menu.addAction("Show every level", self._clear_nsfw)
        self.nsfw.setMenu(self.nsfw_menu)
        row.addWidget(self.nsfw)

        self.username = _line("User", "Only this user's images (exact name, any letter case)", 104)
        self.model_version = _line("Model version", "Only images made with this model version (exact name)", 116)
        self.tag = _line("Tag", "Only images carrying this community tag", 96)
        for edit in (self.username, self.model_version, self.tag):
            edit.textChanged.connect(self._typed)
            edit.returnPressed.connect(self._emit_now)
            edit.completer().activated.connect(lambda _text: self._emit_now())
            row.addWidget(edit)

        self.tag_state = QComboBox()
        self.tag_state.setToolTip("Whether the community tags were fetched")
        self.tag_state.addItem("Any tags", None)
        for value, label in TAG_STATES:
            self.tag_state.addItem(label, value)
        self.tag_state.currentIndexChanged.connect(self._emit_now)
        row.addWidget(self.tag_state)

        self.converted = QComboBox()
        self.converted.setToolTip("Whether the image was converted to WebP")
        self.converted.addItem("WebP or not", None)
        self.converted.addItem("Converted", True)
        self.converted.addItem("Not converted", False)
        self.converted.currentIndexChanged.connect(self._emit_now)
        row.addWidget(self.converted)

        self.dates = QToolButton()
        self.dates.setToolTip("Created between these days (as CivitAI dated the image)")
        self.dates.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.dates_menu = QMenu(self.dates)
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(10, 8, 10, 8)
        self.use_from = QCheckBox("From")
        self.date_from = QDateEdit()
        self.use_to = QCheckBox("To")
        self.date_to = QDateEdit()
        for check, edit in ((self.use_from, self.date_from), (self.use_to, self.date_to)):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(QDate.currentDate())
            edit.setEnabled(False)
            check.toggled.connect(edit.setEnabled)
            check.toggled.connect(self._emit_now)
            edit.dateChanged.connect(self._dates_changed)
            form.addRow(check, edit)
        action = QWidgetAction(self.dates_menu)
        action.setDefaultWidget(box)
        self.dates_menu.addAction(action)
        self.dates.setMenu(self.dates_menu)
        row.addWidget(self.dates)

        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Clear the search and every filter")
        self.reset_button.clicked.connect(self.reset)
        row.addWidget(self.reset_button)
        for combo in (self.media_type, self.tag_state, self.converted):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row.addStretch(1)
        self.count_label = ElidedLabel("")
        self.count_label.setObjectName("Muted")
        row.addWidget(self.count_label)
        col.addLayout(row)
        self._update_labels()

    # -- the page's extra controls ----------------------------------------------------------------

    def add_trailing(self, widget: QWidget) -> None:
        """Put a page's control (sort order, size slider) at the end of the first row."""
        self.top.addWidget(widget)

    def set_count(self, text: str) -> None:
        self.count_label.setText(text)
        self.count_label.setToolTip(text)

    def set_completions(self, users: list[str], models: list[str], tags: list[str]) -> None:
        for edit, values in ((self.username, users), (self.model_version, models), (self.tag, tags)):
            edit.completer().model().setStringList(values)

    # -- state ------------------------------------------------------------------------------------

    def query(self) -> GalleryQuery:
        levels = tuple(v for v, a in self.nsfw_actions.items() if a.isChecked())
        return GalleryQuery(
            text=self.search.text(),
            media_type=self.media_type.currentData(),
            nsfw_levels=levels,
            username=self.username.text(),
            model_version=self.model_version.text(),
            tag=self.tag.text(),
            tag_state=self.tag_state.currentData(),
            converted=self.converted.currentData(),
            date_from=_py_date(self.date_from.date()) if self.use_from.isChecked() else None,
            date_to=_py_date(self.date_to.date()) if self.use_to.isChecked() else None,
        )

    def set_query(self, query: GalleryQuery, *, notify: bool = True) -> None:
        self._quiet = True
        try:
            self.search.setText(query.text)
            _select_data(self.media_type, query.media_type)
            for value, action in self.nsfw_actions.items():
                action.setChecked(value in query.nsfw_levels)
            self.username.setText(query.username)
            self.model_version.setText(query.model_version)
            self.tag.setText(query.tag)
            _select_data(self.tag_state, query.tag_state)
            _select_data(self.converted, query.converted)
            self.use_from.setChecked(query.date_from is not None)
            self.use_to.setChecked(query.date_to is not None)
            if query.date_from:
                self.date_from.setDate(QDate(query.date_from.year, query.date_from.month, query.date_from.day))
            if query.date_to:
                self.date_to.setDate(QDate(query.date_to.year, query.date_to.month, query.date_to.day))
        finally:
            self._quiet = False
        self._debounce.stop()
        if notify:
            self._emit()
        else:
            self._query = self.query()
            self._update_labels()

    def reset(self) -> None:
        self.set_query(GalleryQuery())

    # -- changes ----------------------------------------------------------------------------------

    def _typed(self, *_args) -> None:
        if not self._quiet:
            self._debounce.start()

    def _emit_now(self, *_args) -> None:
        if not self._quiet:
            self._debounce.stop()
            self._emit()

    def _dates_changed(self, *_args) -> None:
        if self.use_from.isChecked() or self.use_to.isChecked():
            self._emit_now()

    def _nsfw_toggled(self, _checked: bool) -> None:
        self._emit_now()

    def _clear_nsfw(self) -> None:
        self._quiet = True
        for action in self.nsfw_actions.values():
            action.setChecked(False)
        self._quiet = False
        self._emit_now()

    def _emit(self) -> None:
        query = self.query()
        self._update_labels(query)
        if query == self._query:
            return
        self._query = query
        self.changed.emit(query)

    def _update_labels(self, query: GalleryQuery | None = None) -> None:
        query = query or self.query()
        if query.nsfw_levels:
            names = [short for v, short, _l, _c in NSFW_LEVELS if v in query.nsfw_levels]
            self.nsfw.setText("NSFW: " + ", ".join(names))
        else:
            self.nsfw.setText("Any NSFW")
        if query.date_from or query.date_to:
            a = query.date_from.isoformat() if query.date_from else "…"
            b = query.date_to.isoformat() if query.date_to else "…"
            self.dates.setText(f"{a} – {b}")
        else:
            self.dates.setText("Any date")
        active = query.active_filters()
        self.reset_button.setEnabled(bool(active or query.text.strip()))


def _py_date(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


def _select_data(combo: QComboBox, value) -> None:
    for i in range(combo.count()):
        if combo.itemData(i) == value:
            combo.setCurrentIndex(i)
            return
    combo.setCurrentIndex(0)
