"""The main window's menu bar: File, Edit, View, Jobs and Help, with the shortcuts of every command.

The window keeps its commands (the slots); this module only declares which of them the menus
offer, under which names and keys. The actions stay attributes of the window (`settings_action`,
`theme_actions`...) for the code and the tests that trigger them.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

from civitgrab_desktop.core.civitai.hosts import site_names
from civitgrab_desktop.gui import icons


def _action(window, text: str, slot, shortcut=None, icon: str | None = None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if icon:
        icons.set_icon(action, icon)
    if shortcut is not None:
        if isinstance(shortcut, list | tuple):
            action.setShortcuts([QKeySequence(s) for s in shortcut])
        else:
            action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work even with the menu bar hidden
    window.all_actions.append(action)
    return action


def build_menus(window) -> None:
    """The menu bar: every command of the window with its shortcut and status tip. The actions are
    also added to the window, so their shortcuts work with the menu bar hidden, and listed in
    `window.all_actions` (the F1 dialog reads them)."""
    window.all_actions = []
    mb = window.menuBar()
    file_menu = mb.addMenu("&File")
    window.new_download_action = _action(window,
        "&New download", window.new_download, "Ctrl+N", "download", "Go to Browse & Download and type identifiers"
    )
    file_menu.addAction(window.new_download_action)
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "Open &data folder", window.open_data_folder, None, "folder",
                                     "Open the folder holding the library, settings and logs"))
    file_menu.addAction(_action(window, "Open &log folder", window.open_log_folder, None, "log",
                                     "Open the folder with the log files"))
    file_menu.addAction(_action(window, "Open &download folder", window.open_download_folder, None, "folder",
                                     "Open the default download folder"))
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "&Import from the classic tool…", window.import_classic, None, "download",
                                "Import downloaded_images.json / tracking_database.sqlite of the classic CLI"))
    file_menu.addSeparator()
    window.settings_action = _action(window, "&Settings…", window.open_settings, ["Ctrl+,", QKeySequence.StandardKey.Preferences],
                                        "settings", "API key, API base, folders, theme, converter defaults")
    window.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    file_menu.addAction(window.settings_action)
    file_menu.addSeparator()
    window.quit_action = _action(window, "&Quit", window.close, "Ctrl+Q", None, "Stop running jobs safely and quit")
    window.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    file_menu.addAction(window.quit_action)

    edit_menu = mb.addMenu("&Edit")
    window.find_action = _action(window, "&Find", window.focus_search, QKeySequence.StandardKey.Find, "search",
                                    "Focus the search or input field of the current page")
    edit_menu.addAction(window.find_action)
    window.paste_link_action = _action(window, "&Paste CivitAI link", window.paste_link, "Ctrl+Shift+V", "link",
                                          f"Download what a copied {site_names()} link points to")
    edit_menu.addAction(window.paste_link_action)

    view_menu = mb.addMenu("&View")
    window.page_actions: list[QAction] = []
    for i, spec in enumerate(window.specs):
        action = _action(window, spec.title, lambda _=False, i=i: window.show_page(i), f"Ctrl+{i + 1}", spec.icon_name)
        view_menu.addAction(action)
        window.page_actions.append(action)
    view_menu.addSeparator()
    window.log_action = _action(window, "Show &log", window.toggle_log, "Ctrl+L", "log", "Recent log lines")
    window.log_action.setCheckable(True)
    window.log_dock.visibilityChanged.connect(window.log_action.setChecked)
    view_menu.addAction(window.log_action)
    theme_menu = view_menu.addMenu("&Theme")
    group = QActionGroup(window)
    window.theme_actions: dict[str, QAction] = {}
    for mode, label in (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")):
        action = QAction(label, window, checkable=True)
        action.triggered.connect(lambda _=False, m=mode: window.set_theme(m))
        group.addAction(action)
        theme_menu.addAction(action)
        window.theme_actions[mode] = action
    window.theme_actions.get(window.ctx.settings.get("theme"), window.theme_actions["system"]).setChecked(True)

    jobs_menu = mb.addMenu("&Jobs")
    jobs_menu.addAction(_action(window, "&Pause all", window.ctx.jobs.pause_all, "Ctrl+Shift+P", "pause",
                                     "Pause every running job"))
    jobs_menu.addAction(_action(window, "&Resume all", window.ctx.jobs.resume_all, "Ctrl+Shift+R", "play",
                                     "Resume every paused job"))
    jobs_menu.addAction(_action(window, "&Stop all", window.ctx.jobs.stop_all, None, "stop",
                                     "Stop every job; what is downloaded stays"))
    jobs_menu.addSeparator()
    jobs_menu.addAction(_action(window, "&Check saved queries for new", window.check_for_new, "Ctrl+U", "retry",
                                     "Re-run every active saved query, newest first, stopping at known items"))

    help_menu = mb.addMenu("&Help")
    window.shortcuts_action = _action(window, "&Keyboard shortcuts", window.show_shortcuts, "F1", "keyboard",
                                         "List every shortcut")
    help_menu.addAction(window.shortcuts_action)
    help_menu.addAction(_action(window, "Open log folder", window.open_log_folder, None, "log"))
    help_menu.addSeparator()
    about = _action(window, "&About civitgrab", window.show_about, None, "info")
    about.setMenuRole(QAction.MenuRole.AboutRole)
    help_menu.addAction(about)
    about_qt = _action(window, "About &Qt", lambda: QMessageBox.aboutQt(window), None)
    about_qt.setMenuRole(QAction.MenuRole.AboutQtRole)
    help_menu.addAction(about_qt)
