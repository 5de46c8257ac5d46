"""The settings dialog, generated from core.config.SETTINGS.

Every declared setting gets an editor chosen by its type, choices and bounds, with its help text as
tooltip; `TABS` only says which tab it belongs to (a setting not listed lands on General, so a new
setting appears without touching this file). A few settings get a richer editor (folders, the API
base), and the Network tab adds the API key, which lives in the OS keychain, never in the settings
file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from civitgrab_desktop.core import secrets
from civitgrab_desktop.core.civitai.client import (
    CivitaiClient,
    CivitaiError,
    ClientOptions,
    ClientRequestError,
    RateLimitedError,
)
from civitgrab_desktop.core.civitai.hosts import MAIN_DOMAIN, SITE_CHOICES
from civitgrab_desktop.core.civitai.urls import MODELS_PATH, api_url
from civitgrab_desktop.core.config import DEFAULT_API_BASE, ENV_API_KEY, SETTINGS, Setting
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.util import spawn
from civitgrab_desktop.gui.widgets.common import FolderPicker, hint

LOG = logging.getLogger(__name__)

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


def keychain_usable() -> tuple[bool, str]:
    name = secrets.keychain_name()
    lowered = name.lower()
    if "unavailable" in lowered or ".fail." in lowered or ".null." in lowered:
        return False, name
    return True, name


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


class SettingsDialog(QDialog):
    applied = Signal()

    def __init__(self, ctx, theme_manager=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.theme_manager = theme_manager
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
        self.editors: dict[str, Editor] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        forms: dict[str, QFormLayout] = {}
        self.pages: dict[str, QWidget] = {}
        for tab in TAB_ORDER:
            page = QWidget()
            outer = QVBoxLayout(page)
            outer.setContentsMargins(16, 16, 16, 16)
            form = QFormLayout()
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setHorizontalSpacing(12)
            form.setVerticalSpacing(9)
            outer.addLayout(form)
            outer.addStretch(1)
            forms[tab] = form
            self.pages[tab] = page
            self.tabs.addTab(page, tab)

        self._add_api_key_rows(forms["Network"])
        for setting in SETTINGS:
            editor = make_editor(setting)
            editor.widget.setToolTip(setting.help)
            self.editors[setting.name] = editor
            forms[TABS.get(setting.name, "General")].addRow(label_for(setting), editor.widget)
        if ctx.env_api_base:
            base = self.editors["api_base"].widget
            base.setEnabled(False)
            base.setToolTip(f"Set for this run by --api-base or CIVITGRAB_API_BASE: {ctx.api_base}")
            forms["Network"].addRow("", hint(f"This run uses {ctx.api_base} (from --api-base / CIVITGRAB_API_BASE)."))
        forms["Appearance"].addRow("", hint("“Follow the system” switches between light and dark with your desktop."))
        forms["Converter"].addRow("", hint("These are the defaults of the Converter page."))
        forms["General"].addRow("", hint("Download defaults; each job can change them on the Browse & Download page."))

        self.error = QLabel("")
        self.error.setObjectName("Error")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).setToolTip(
            "Put every setting on this tab back to its default (applied with OK/Apply)"
        )
        layout.addWidget(self.buttons)
        self.load()
        self._keychain_ok: bool | None = None
        spawn(self._check_keychain(), name="keychain-check")

    # -- API key -------------------------------------------------------------------------------------

    def _add_api_key_rows(self, form: QFormLayout) -> None:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setClearButtonEnabled(True)
        self.key_edit.setToolTip(f"Your CivitAI API key ({MAIN_DOMAIN} → Account settings → API keys). Stored in the OS keychain.")
        self.key_edit.addAction(icons.icon("key"), QLineEdit.ActionPosition.LeadingPosition)
        self.show_key = QPushButton("Show")
        self.show_key.setCheckable(True)
        self.show_key.setToolTip("Show the key you are typing")
        self.show_key.toggled.connect(
            lambda on: self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        )
        self.test_key = QPushButton("Test key")
        self.test_key.setToolTip("Ask the API base whether it accepts the key")
        self.test_key.clicked.connect(lambda: spawn(self.run_key_test(), name="test-key"))
        self.remove_key = QPushButton("Remove")
        self.remove_key.setToolTip("Delete the stored key from the keychain")
        self.remove_key.clicked.connect(self._remove_key)
        line.addWidget(self.key_edit, 1)
        line.addWidget(self.show_key)
        line.addWidget(self.test_key)
        line.addWidget(self.remove_key)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 6)
        col.setSpacing(4)
        col.addWidget(row)
        self.key_status = hint("")
        self.key_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.key_status)
        form.addRow("API key", box)
        form.labelForField(box).setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self._update_key_status()

    def _update_key_status(self, extra: str = "") -> None:
        key = self.ctx.api_key
        if self.ctx.api_key_from_env:
            text = f"Using the key from the {ENV_API_KEY} environment variable ({secrets.mask(key)[-8:]})."
        elif key:
            text = f"A key is stored ({secrets.mask(key)[-8:]}). Type a new one to replace it."
            self.key_edit.setPlaceholderText(secrets.mask(key)[-12:])
        else:
            text = "No key set. Without one, some NSFW content is hidden by the service."
            self.key_edit.setPlaceholderText("Paste your API key")
        if self._keychain_ok is False:
            text += (
                f" No OS keychain is available here, so the key cannot be saved: set the {ENV_API_KEY} "
                "environment variable before starting civitgrab instead."
            )
        if extra:
            text += " " + extra
        self.key_status.setText(text)

    _keychain_ok: bool | None = None

    async def _check_keychain(self) -> None:
        loop = asyncio.get_running_loop()
        ok, name = await loop.run_in_executor(None, keychain_usable)
        if not isValid(self):  # the dialog was closed meanwhile
            return
        self._keychain_ok = ok
        LOG.debug("keychain: %s (%s)", name, "usable" if ok else "not usable")
        self._update_key_status()
        self.remove_key.setEnabled(ok and bool(self.ctx.api_key) and not self.ctx.api_key_from_env)

    async def run_key_test(self) -> str:
        """GET <api base>/api/v1/models?limit=1 with the key; shows and returns the verdict."""
        key = self.key_edit.text().strip() or self.ctx.api_key
        base = self.editors["api_base"].get() if not self.ctx.env_api_base else self.ctx.api_base
        if not key:
            verdict = "Enter a key first."
            self.key_status.setText(verdict)
            return verdict
        self.test_key.setEnabled(False)
        self.key_status.setText(f"Testing the key against {base}…")
        client = CivitaiClient(
            base, api_key=key, options=ClientOptions(retries=0, listing_retries=0, timeout=20), session=self.ctx.session
        )
        try:
            await client.get_json(api_url(base, MODELS_PATH, {"limit": 1}), kind="listing")
            verdict = f"✓ {base} accepted the key."
            ok = True
        except ClientRequestError as exc:
            ok = False
            if exc.status in (401, 403):
                verdict = f"✗ {base} rejected the key (HTTP {exc.status}). Check that it was copied whole."
            else:
                verdict = f"✗ {base} answered HTTP {exc.status}: {exc.reason}"
        except RateLimitedError:
            ok = False
            verdict = f"{base} is rate limiting requests right now; try again in a minute."
        except CivitaiError as exc:
            ok = False
            verdict = f"✗ Could not check the key with {base}: {exc.reason}"
        finally:
            await client.close()
            if isValid(self):
                self.test_key.setEnabled(True)
        if not isValid(self):
            return verdict
        self.key_status.setObjectName("Success" if ok else "Error")
        self.key_status.style().unpolish(self.key_status)
        self.key_status.style().polish(self.key_status)
        self.key_status.setText(verdict)
        return verdict

    def _remove_key(self) -> None:
        removed = secrets.clear_api_key()
        if removed and not self.ctx.api_key_from_env:
            self.ctx.set_api_key(None)
        self.key_edit.clear()
        self._update_key_status("Key removed from the keychain." if removed else "No key was stored in the keychain.")

    def _apply_key(self) -> bool:
        key = self.key_edit.text().strip()
        if not key or key == self.ctx.api_key:
            return True
        try:
            secrets.store_api_key(key)
        except secrets.KeychainUnavailable as exc:
            self._show_error(f"The API key was not saved: {exc}.")
            return False
        if not self.ctx.api_key_from_env:
            self.ctx.set_api_key(key)
        self.key_edit.clear()
        self._update_key_status("Key saved in the keychain.")
        return True

    # -- load / apply ----------------------------------------------------------------------------------

    def load(self) -> None:
        s = self.ctx.settings
        for name, editor in self.editors.items():
            editor.put(s.get(name))

    def restore_defaults(self) -> None:
        tab = TAB_ORDER[self.tabs.currentIndex()]
        for name, editor in self.editors.items():
            if TABS.get(name, "General") == tab and editor.widget.isEnabled():
                editor.put(editor.setting.default)

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def apply(self) -> bool:
        s = self.ctx.settings
        self.error.hide()
        errors = []
        for name, editor in self.editors.items():
            if not editor.widget.isEnabled():
                continue
            try:
                value = editor.setting.coerce(editor.get())
            except (TypeError, ValueError) as exc:
                errors.append(f"{label_for(editor.setting)}: {exc}")
                continue
            if value == editor.setting.default:
                s.reset(name)
            else:
                s.set(name, value)
        if errors:
            self._show_error("; ".join(errors))
            return False
        if not self._apply_key():
            return False
        self.ctx.set_api_base(s.get("api_base"))
        if self.theme_manager is not None:
            self.theme_manager.apply(s.get("theme"))
        spawn(self.ctx.save_settings(), name="save-settings")
        self.ctx.settingsChanged.emit()
        self.applied.emit()
        return True

    def _ok(self) -> None:
        if self.apply():
            self.accept()
