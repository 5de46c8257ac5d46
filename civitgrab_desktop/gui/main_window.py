"""The main window: the sidebar and the stack of pages, the status bar (API base, running jobs),
the log dock, dropped and pasted links, saved window state, and the orderly shutdown (jobs stop
and save, the library closes, then the window closes). Its menus are declared in `menus.py`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.civitai.hosts import site_names
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.context import AppContext
from civitgrab_desktop.gui.dialogs import AboutDialog, ShortcutsDialog, confirm
from civitgrab_desktop.gui.log_view import LogView, install_tail_handler
from civitgrab_desktop.gui.menus import build_menus
from civitgrab_desktop.gui.pages import PageSpec, default_pages
from civitgrab_desktop.gui.settings_dialog import SettingsDialog
from civitgrab_desktop.gui.util import open_folder, plural, reset_quitting, settle_background_tasks, spawn
from civitgrab_desktop.gui.widgets.jobs_indicator import JobsIndicator
from civitgrab_desktop.gui.widgets.page import Page

LOG = logging.getLogger(__name__)
STATE_KEY = "window"


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(self, ctx: AppContext, theme_manager=None, pages: list[PageSpec] | None = None):
        super().__init__()
        reset_quitting()  # a window opened after another one quit (tests do that) runs normally
        self.ctx = ctx
        self.theme_manager = theme_manager
        self.setWindowTitle("civitgrab")
        self.setWindowIcon(icons.app_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(QSize(960, 600))
        self._shutdown_task: asyncio.Task | None = None
        self._closing_done = False
        self._settings_dialog: SettingsDialog | None = None

        self.specs = pages or default_pages()
        self.pages: dict[str, Page] = {}

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self._build_sidebar())
        self.stack = QStackedWidget()
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        for spec in self.specs:
            page = spec.factory(ctx)
            self.pages[spec.key] = page
            self.stack.addWidget(page)
            item = QListWidgetItem(icons.icon(spec.icon_name), spec.title)
            item.setSizeHint(QSize(0, 38))
            item.setToolTip(spec.title)
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._on_page)

        self._build_log_dock()
        self._build_status_bar()
        build_menus(self)
        self.sidebar.setCurrentRow(0)

        ctx.jobs.aggregateChanged.connect(self.jobs_indicator.update_counts)
        ctx.jobs.jobFinished.connect(self._on_job_finished)
        ctx.statusMessage.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        ctx.settingsChanged.connect(self._update_api_label)
        if theme_manager is not None:
            theme_manager.changed.connect(self._on_theme)
        self.restore_state()

    # -- construction --------------------------------------------------------------------------------

    def _build_sidebar(self) -> QWidget:
        panel = QWidget()
        panel.setObjectName("SidebarPanel")
        panel.setFixedWidth(208)
        col = QVBoxLayout(panel)
        col.setContentsMargins(10, 14, 0, 10)
        col.setSpacing(8)
        brand = QHBoxLayout()
        brand.setContentsMargins(8, 0, 0, 0)
        logo = QLabel()
        logo.setPixmap(icons.app_icon().pixmap(28, 28))
        name = QLabel("civitgrab")
        name.setObjectName("SidebarBrand")
        brand.addWidget(logo)
        brand.addWidget(name)
        brand.addStretch(1)
        col.addLayout(brand)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("Sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.sidebar.setAccessibleName("Pages")
        self.sidebar.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        col.addWidget(self.sidebar, 1)
        self.settings_button = QPushButton("Settings")
        icons.set_icon(self.settings_button, "settings")
        self.settings_button.setFlat(True)
        self.settings_button.setToolTip("Settings (Ctrl+,)")
        self.settings_button.clicked.connect(self.open_settings)
        self.log_button = QPushButton("Log")
        icons.set_icon(self.log_button, "log")
        self.log_button.setFlat(True)
        self.log_button.setToolTip("Show recent log lines (Ctrl+L)")
        self.log_button.clicked.connect(self.toggle_log)
        for b in (self.log_button, self.settings_button):
            b.setStyleSheet("text-align: left; padding: 6px 10px;")
            col.addWidget(b)
        return panel

    def _build_log_dock(self) -> None:
        handler = install_tail_handler()
        self.log_view = LogView(handler, open_log_folder=self.open_log_folder)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("LogDock")
        self.log_dock.setWidget(self.log_view)
        self.log_dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(True)
        self.api_label = QLabel("")
        self.api_label.setObjectName("Muted")
        self.jobs_indicator = JobsIndicator()
        self.jobs_indicator.clicked.connect(self._show_jobs)
        bar.addPermanentWidget(self.api_label)
        bar.addPermanentWidget(self.jobs_indicator)
        self._update_api_label()
        bar.showMessage("Ready", 3000)

    # -- pages ---------------------------------------------------------------------------------------

    def page(self, key: str) -> Page:
        return self.pages[key]

    def check_for_new(self) -> None:
        """Jobs → Check saved queries for new: show the Saved queries page and check them all."""
        page = self.pages.get("queries")
        if page is not None:
            self.show_page("queries")
            page.check_all()

    def current_page(self) -> Page:
        return self.stack.currentWidget()

    def show_page(self, index_or_key: int | str) -> None:
        index = index_or_key if isinstance(index_or_key, int) else list(self.pages).index(index_or_key)
        if 0 <= index < self.stack.count():
            self.sidebar.setCurrentRow(index)

    def _on_page(self, index: int) -> None:
        if index < 0:
            return
        self.stack.setCurrentIndex(index)
        page = self.stack.widget(index)
        self.setWindowTitle(f"{page.title} — civitgrab")
        page.activated()

    def focus_search(self) -> None:
        widget = self.current_page().search_widget()
        if widget is not None:
            widget.setFocus(Qt.FocusReason.ShortcutFocusReason)
            select_all = getattr(widget, "selectAll", None)
            if callable(select_all):
                select_all()

    def new_download(self) -> None:
        self.show_page("download")
        self.focus_search()

    def paste_link(self) -> None:
        text = QGuiApplication.clipboard().text()
        if text.strip():
            self.accept_text(text)
        else:
            self.statusBar().showMessage("The clipboard holds no text.", 4000)

    def accept_text(self, text: str) -> bool:
        page = self.pages.get("download")
        if page is not None and page.accept_text(text):
            self.show_page("download")
            return True
        return False

    def _show_jobs(self) -> None:
        active = self.ctx.jobs.active()
        kind = active[0].kind if active else "download"
        self.show_page(kind if kind in self.pages else "download")

    def _on_job_finished(self, handle) -> None:
        state = handle.bridge.state
        self.statusBar().showMessage(f"{handle.title}: {state}", 8000)

    # -- drag and drop -------------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasText():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        text = dropped_text(event.mimeData())
        if text and self.accept_text(text):
            event.acceptProposedAction()
            self.statusBar().showMessage("Link added to the download form.", 4000)
        else:
            self.statusBar().showMessage(f"Drop {site_names(' or ')} links (or a .txt list of them).", 5000)

    # -- actions -------------------------------------------------------------------------------------

    def open_data_folder(self) -> None:
        open_folder(self.ctx.services.paths.data_dir)

    def open_log_folder(self) -> None:
        open_folder(self.ctx.services.paths.logs)

    def open_download_folder(self) -> None:
        open_folder(self.ctx.default_output_dir())

    def import_classic(self):
        """File → Import from the classic tool (gui/migrate_dialog.py asks which folders to trust)."""
        from civitgrab_desktop.gui.migrate_dialog import ClassicImport

        self.classic_import = ClassicImport(self)
        return self.classic_import.start()

    def toggle_log(self) -> None:
        self.log_dock.setVisible(not self.log_dock.isVisible())
        if self.log_dock.isVisible():
            self.log_view.filter.setFocus()

    def open_settings(self) -> SettingsDialog:
        if self._settings_dialog is not None and self._settings_dialog.isVisible():
            self._settings_dialog.raise_()
            self._settings_dialog.activateWindow()
            return self._settings_dialog
        dialog = SettingsDialog(self.ctx, self.theme_manager, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.applied.connect(self._on_settings_applied)
        self._settings_dialog = dialog
        dialog.open()
        return dialog

    def _on_settings_applied(self) -> None:
        mode = self.ctx.settings.get("theme")
        if mode in self.theme_actions:
            self.theme_actions[mode].setChecked(True)
        self.statusBar().showMessage("Settings saved. New jobs use them.", 4000)

    def set_theme(self, mode: str) -> None:
        self.ctx.settings.set("theme", mode)
        if self.theme_manager is not None:
            self.theme_manager.apply(mode)
        spawn(self.ctx.save_settings(), name="save-settings")

    def _on_theme(self, _colors) -> None:
        # icons are tinted with the palette: rebuild the ones this window owns
        for i, spec in enumerate(self.specs):
            self.sidebar.item(i).setIcon(icons.icon(spec.icon_name))
        icons.set_icon(self.settings_button, "settings")
        icons.set_icon(self.log_button, "log")

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.all_actions, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.ctx, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _update_api_label(self) -> None:
        base = self.ctx.api_base.replace("https://", "").replace("http://", "")
        key = "key set" if self.ctx.api_key else "no API key"
        self.api_label.setText(f"{base} · {key}")
        self.api_label.setToolTip(f"API base {self.ctx.api_base}; {key}. Change it in Settings → Network.")

    # -- state ---------------------------------------------------------------------------------------

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_raw(f"{STATE_KEY}/geometry", bytes(self.saveGeometry().toBase64()).decode("ascii"))
        s.set_raw(f"{STATE_KEY}/state", bytes(self.saveState().toBase64()).decode("ascii"))
        s.set_raw(f"{STATE_KEY}/page", self.stack.currentIndex())
        pages: dict[str, Any] = {}
        for key, page in self.pages.items():
            try:
                pages[key] = page.save_state()
            except Exception:
                LOG.exception("could not save the state of page %s", key)
        s.set_raw(f"{STATE_KEY}/pages", pages)

    def restore_state(self) -> None:
        s = self.ctx.settings
        geometry = s.raw(f"{STATE_KEY}/geometry")
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        else:
            self.resize(1200, 760)
        state = s.raw(f"{STATE_KEY}/state")
        if state:
            self.restoreState(QByteArray.fromBase64(state.encode("ascii")))
        pages = s.raw(f"{STATE_KEY}/pages") or {}
        for key, page in self.pages.items():
            try:
                page.restore_state(pages.get(key) or {})
            except Exception:
                LOG.exception("could not restore the state of page %s", key)
        index = s.raw(f"{STATE_KEY}/page")
        if isinstance(index, int) and 0 <= index < self.stack.count():
            self.sidebar.setCurrentRow(index)

    # -- start and shutdown --------------------------------------------------------------------------

    async def started(self) -> None:
        """After the window is shown: open the library and offer to resume unfinished jobs."""
        try:
            await self.ctx.library()
        except Exception as exc:
            LOG.exception("could not open the library")
            self.statusBar().showMessage(f"Could not open the library: {exc}")
            raise
        download = self.pages.get("download")
        if download is not None and hasattr(download, "load_unfinished"):
            await download.load_unfinished()
        self.current_page().activated()

    async def shutdown(self) -> None:
        """Save the window state, stop jobs (awaiting their end), close the library and session."""
        active = self.ctx.jobs.active()
        if active:
            self.statusBar().showMessage(f"Stopping {plural(len(active), 'job')} safely…")
        self.save_state()
        for page in self.pages.values():
            try:
                page.shutdown()
            except Exception:  # one page must not keep the others (or the jobs) from closing
                LOG.exception("page %s did not shut down cleanly", page.key)
        await settle_background_tasks()  # reads and refreshes end while the library is open
        await self.ctx.close()
        await settle_background_tasks(timeout=1.0)  # what finishing jobs started meanwhile

    def request_quit(self) -> asyncio.Task:
        if self._shutdown_task is None:
            self.setEnabled(False)

            async def go() -> None:
                try:
                    await self.shutdown()
                finally:
                    self._closing_done = True
                    self.close()
                    self.closed.emit()

            self._shutdown_task = spawn(go(), name="shutdown")
        return self._shutdown_task

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self._closing_done:
            event.accept()
            return
        event.ignore()
        if self._shutdown_task is not None:
            return
        active = self.ctx.jobs.active()
        if not active:
            self.request_quit()
            return
        self._quit_box = confirm(
            self,
            title="Quit civitgrab?",
            text="A job is running." if len(active) == 1 else f"{len(active)} jobs are running.",
            detail="Quitting stops them after the files in progress; nothing is lost and you can resume them next time.",
            action="Quit",
            icon=QMessageBox.Icon.Question,
            default_to_action=True,
            on_yes=lambda: QTimer.singleShot(0, self.request_quit),
        )


def dropped_text(mime) -> str:
    """The links in a drop: URLs, plain text, or the lines of a dropped .txt file."""
    lines: list[str] = []
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.suffix.lower() == ".txt" and path.is_file() and path.stat().st_size < 1_000_000:
                    lines.extend(line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
            else:
                lines.append(url.toString())
    if not lines and mime.hasText():
        lines = [mime.text()]
    return "\n".join(line for line in lines if line)
