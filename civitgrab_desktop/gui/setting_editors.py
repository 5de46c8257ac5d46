"""An editor for every declared setting (core.config.SETTINGS), chosen by its type, choices and
bounds, with its label, unit and tab.

`TABS` only says which tab a setting belongs to: a setting not listed lands on General, so a new
setting appears in the dialog without touching this file. A few settings get a richer editor
(folders, the browser executable, the API base).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from civitgrab_desktop.core.civitai.hosts import SITE_CHOICES
from civitgrab_desktop.core.config import DEFAULT_API_BASE, Setting
from civitgrab_desktop.gui.widgets.common import FolderPicker

TAB_ORDER = ("General", "Network", "Appearance", "Converter")
TABS = {
    "output_dir": "General",
    "nsfw": "General",
    "quality": "General",
    "tag_method": "General",
    "tag_workers": "General",
    "browser_path": "General",
    "update_stop_after": "General",
    "update_every_hours": "General",
    "api_base": "Network",
    "concurrency": "Network",
    "timeout": "Network",
    "retries": "Network",
    "politeness_interval": "Network",
    "theme": "Appearance",
    "convert_quality": "Converter",
    "convert_lossless": "Converter",
    "convert_workers": "Converter",
    "convert_batch_size": "Converter",
    "phash_threshold": "Converter",
    "pg13_is_nsfw": "Converter",
}
LABELS = {
    "api_base": "CivitAI site",
    "output_dir": "Download folder",
    "nsfw": "NSFW levels",
    "quality": "Image quality",
    "concurrency": "Concurrent transfers",
    "timeout": "Network timeout",
    "retries": "Retries per file",
    "politeness_interval": "Politeness interval",
    "tag_method": "Tag method",
    "tag_workers": "Tag workers",
    "browser_path": "Browser for tags",
    "convert_quality": "WebP quality",
    "convert_lossless": "Lossless WebP",
    "convert_workers": "Encoder processes",
    "convert_batch_size": "Batch size",
    "phash_threshold": "pHash threshold",
    "pg13_is_nsfw": "PG-13 is NSFW",
    "theme": "Theme",
    "update_stop_after": "Update stops after",
    "update_every_hours": "Check saved queries",
}
CHOICE_LABELS: dict[str, dict[Any, str]] = {
    "nsfw": {"none": "None — safe only", "soft": "Soft — adds PG-13", "mature": "Mature — adds R", "x": "X — everything"},
    "quality": {1: "Resized (CDN JPEG)", 2: "Original (full resolution)"},
    "theme": {"system": "Follow the system", "light": "Light", "dark": "Dark"},
    "tag_method": {"auto": "Automatic", "api": "API only", "browser": "Browser (Chromium)"},
}
SUFFIXES = {"timeout": " s", "politeness_interval": " s", "update_every_hours": " h", "update_stop_after": " known items"}
SPECIAL_ZERO = {"convert_workers": "Automatic (one per core)", "update_every_hours": "Never", "politeness_interval": "None"}


def label_for(setting: Setting) -> str:
    return LABELS.get(setting.name, setting.name.replace("_", " ").capitalize())


class ApiBaseEditor(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        for value, label in SITE_CHOICES:
            self.combo.addItem(label, value)
        self.combo.addItem("Custom…", "custom")
        self.custom = QLineEdit()
        self.custom.setPlaceholderText("https://…")
        row.addWidget(self.combo)
        row.addWidget(self.custom, 1)
        self.combo.currentIndexChanged.connect(self._update)
        self._update()

    def _update(self, *_args) -> None:
        self.custom.setVisible(self.combo.currentData() == "custom")

    def value(self) -> str:
        data = self.combo.currentData()
        return (self.custom.text().strip() if data == "custom" else data).rstrip("/")

    def set_value(self, value: str) -> None:
        value = (value or DEFAULT_API_BASE).rstrip("/")
        i = self.combo.findData(value)
        if i >= 0:
            self.combo.setCurrentIndex(i)
        else:
            self.combo.setCurrentIndex(self.combo.findData("custom"))
            self.custom.setText(value)


class FileField(QWidget):
    def __init__(self, caption: str, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        button = QPushButton("Browse…")
        button.clicked.connect(self._browse)
        row.addWidget(self.edit, 1)
        row.addWidget(button)
        self._caption = caption

    def _browse(self) -> None:
        dialog = QFileDialog(self, self._caption, self.edit.text())
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.edit.setText)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()


class Editor:
    """Binds one Setting to a widget: get/set its value."""

    def __init__(self, setting: Setting, widget: QWidget, get: Callable[[], Any], put: Callable[[Any], None]):
        self.setting = setting
        self.widget = widget
        self.get = get
        self.put = put


def make_editor(setting: Setting) -> Editor:
    name, default = setting.name, setting.default
    if name == "api_base":
        w = ApiBaseEditor()
        return Editor(setting, w, w.value, w.set_value)
    if name == "output_dir":
        w = FolderPicker("Default download folder")
        w.edit.setPlaceholderText("~/Pictures/civitgrab")
        return Editor(setting, w, w.path, lambda v: w.set_path(v or ""))
    if name == "browser_path":
        w = FileField("Chromium, Chrome, Edge or Firefox executable")
        w.edit.setPlaceholderText("Find one automatically (or type chrome, msedge, firefox)")
        return Editor(setting, w, lambda: w.edit.text().strip(), lambda v: w.edit.setText(v or ""))
    if setting.choices is not None:
        w = QComboBox()
        labels = CHOICE_LABELS.get(name, {})
        for choice in setting.choices:
            w.addItem(labels.get(choice, str(choice)), choice)

        def put_choice(v: Any, w: QComboBox = w) -> None:
            i = w.findData(v)
            w.setCurrentIndex(max(0, i))

        return Editor(setting, w, w.currentData, put_choice)
    if isinstance(default, bool):
        w = QCheckBox()
        return Editor(setting, w, w.isChecked, lambda v: w.setChecked(bool(v)))
    if isinstance(default, int):
        w = QSpinBox()
        w.setRange(int(setting.minimum if setting.minimum is not None else 0),
                   int(setting.maximum if setting.maximum is not None else 2_000_000_000))
        w.setSuffix(SUFFIXES.get(name, ""))
        if name in SPECIAL_ZERO and w.minimum() == 0:
            w.setSpecialValueText(SPECIAL_ZERO[name])
        return Editor(setting, w, w.value, lambda v: w.setValue(int(v)))
    if isinstance(default, float):
        w = QDoubleSpinBox()
        w.setDecimals(2)
        w.setSingleStep(0.1)
        w.setRange(setting.minimum if setting.minimum is not None else 0.0,
                   setting.maximum if setting.maximum is not None else 1e9)
        w.setSuffix(SUFFIXES.get(name, ""))
        if name in SPECIAL_ZERO and w.minimum() == 0:
            w.setSpecialValueText(SPECIAL_ZERO[name])
        return Editor(setting, w, w.value, lambda v: w.setValue(float(v)))
    w = QLineEdit()
    return Editor(setting, w, lambda: w.text().strip(), lambda v: w.setText("" if v is None else str(v)))
