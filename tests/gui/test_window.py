"""The main window: pages, shortcuts, pasted and dropped links, settings, log view, error hook."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from civitgrab_desktop.core.config import SETTINGS
from civitgrab_desktop.gui.panels.download_input import InputError, rewrite_pasted, validate_identifiers
from tests.gui.conftest import close_window, make_window, wait_until

# -- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "text", "want_mode", "want_text"),
    [
        (1, "https://civitai.com/user/alice", 1, "alice"),
        (1, "https://civitai.red/models/4201?modelVersionId=130072", 4, "130072"),
        (4, "https://civitai.com/models/4201", 2, "4201"),
        (1, "civitai.com/tag/sci-fi", 3, "sci-fi"),
        (2, "https://civitai.com/search/models?tags=anime", 3, "anime"),
        (1, "bob_art, https://civitai.com/user/alice", 1, "bob_art, alice"),
        (1, "https://civitai.com/user/alice https://civitai.com/user/bob_art", 1, "alice, bob_art"),
    ],
)
def test_rewrite_pasted_links(mode, text, want_mode, want_text):
    got_mode, got_text, _note = rewrite_pasted(mode, text)
    assert (got_mode, got_text) == (want_mode, want_text)


def test_rewrite_pasted_switches_the_mode_or_explains():
    mode, text, note = rewrite_pasted(1, "https://civitai.com/images/123")
    assert (mode, text) == (6, "123")  # an image link switches to image mode
    mode, text, note = rewrite_pasted(2, "https://civitai.red/posts/800030")
    assert (mode, text) == (5, "800030")
    mode, text, note = rewrite_pasted(1, "https://civitai.com/images?tags=5169")
    assert mode == 3 and "tag's name" in note
    mode, text, note = rewrite_pasted(1, "https://civitai.com/user/alice, https://civitai.com/models/5")
    assert (mode, text) == (1, "alice") and "Ignored" in note


def test_validate_identifiers():
    assert validate_identifiers(2, " 12, 0012 ,7") == ["12", "7"]
    with pytest.raises(InputError, match="numeric"):
        validate_identifiers(4, "abc")
    with pytest.raises(InputError, match="username"):
        validate_identifiers(1, "not a name!")
    with pytest.raises(InputError, match="at least one"):
        validate_identifiers(3, " , ")


# -- the window -----------------------------------------------------------------------------------


async def test_pages_shortcuts_and_find(window):
    window.activateWindow()  # shortcuts only reach the active window
    await wait_until(lambda: QApplication.activeWindow() is window, 10, what="the window to be active")
    titles = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert titles == ["Browse & Download", "Tag Scraper", "Converter", "Gallery", "Database", "Saved queries"]
    for i in range(6):
        window.page_actions[i].trigger()
        assert window.stack.currentIndex() == i
    QTest.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    await wait_until(lambda: window.current_page().key == "tags", 5, what="Ctrl+2")
    window.page_actions[0].trigger()
    window.find_action.trigger()
    await wait_until(lambda: window.focusWidget() is window.page("download").identifiers, 5, what="Ctrl+F")
    keys = {a.text().replace("&", ""): a.shortcut().toString() for a in window.all_actions}
    assert keys["Quit"] == "Ctrl+Q"
    assert keys["Settings…"] == "Ctrl+,"
    assert keys["Keyboard shortcuts"] == "F1"
    assert keys["Find"] == "Ctrl+F"
    assert keys["Check saved queries for new"] == "Ctrl+U"
    dialog = window.show_shortcuts()
    rows = dict(dialog.shortcut_texts())
    assert rows["Converter"] == "Ctrl+3" and rows["Quit"] == "Ctrl+Q" and rows["Keyboard shortcuts"] == "F1"
    dialog.close()
    about = window.show_about()
    assert "civitgrab" in about.text.text() and window.ctx.api_base in about.text.text()
    about.close()


async def test_paste_and_drop_links_switch_the_mode(window, tmp_path):
    page = window.page("download")
    page.identifiers.setText("https://civitai.red/models/4201?modelVersionId=130072")
    assert page.mode.value() == 4 and page.identifiers.text() == "130072"

    QGuiApplication.clipboard().setText("https://civitai.com/user/bob_art")
    window.show_page("convert")
    window.paste_link_action.trigger()
    assert window.current_page().key == "download"
    assert page.mode.value() == 1 and page.identifiers.text() == "bob_art"

    page.identifiers.clear()
    mime = QMimeData()
    mime.setUrls([QUrl("https://civitai.com/models/4201")])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert page.mode.value() == 2 and page.identifiers.text() == "4201"

    listing = tmp_path / "links.txt"
    listing.write_text("https://civitai.com/user/alice\nhttps://civitai.com/user/bob_art\n")
    page.identifiers.clear()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(listing))])
    window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
    assert page.mode.value() == 1 and page.identifiers.text() == "alice, bob_art"


async def test_bad_input_is_explained_not_started(window):
    page = window.page("download")
    page.mode.set_value(2)
    page.identifiers.setText("alice")
    page.start_button.click()
    await wait_until(lambda: page.error.isVisibleTo(page), 5, what="the error")
    assert "numeric" in page.error.text()
    assert window.ctx.jobs.handles == []


async def test_settings_dialog_is_generated_from_settings(window, data_dir, fake_civitai):
    dialog = window.open_settings()
    assert set(dialog.editors) == {s.name for s in SETTINGS}
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert tabs == ["General", "Network", "Appearance", "Converter"]
    for editor in dialog.editors.values():
        assert editor.widget.toolTip(), editor.setting.name
    # --api-base given: the API base is shown but not editable
    assert not dialog.editors["api_base"].widget.isEnabled()

    dialog.editors["concurrency"].put(7)
    dialog.editors["politeness_interval"].put(0.5)
    dialog.editors["theme"].put("dark")
    assert dialog.apply()
    await wait_until(lambda: (data_dir / "settings.json").exists(), 5)
    await asyncio.sleep(0.2)
    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved["concurrency"] == 7 and saved["politeness_interval"] == 0.5 and saved["theme"] == "dark"
    assert window.ctx.settings.get("concurrency") == 7
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert window.theme_actions["dark"].isChecked()

    # restore defaults on the current tab (Appearance) and apply
    dialog.tabs.setCurrentIndex(2)
    dialog.restore_defaults()
    assert dialog.editors["theme"].get() == "system"
    assert dialog.editors["concurrency"].get() == 7  # another tab: untouched

    # the key test talks to the API base; no keychain here: the dialog says how to use the env var
    await wait_until(lambda: dialog._keychain_ok is not None, 10)
    assert dialog._keychain_ok is False
    assert "CIVITAI_API_KEY" in dialog.key_status.text()
    dialog.key_edit.setText("secret-key-1234")
    verdict = await dialog.run_key_test()
    assert "accepted" in verdict, verdict
    requests = [r for r in fake_civitai.requests("/api/v1/models")]
    assert requests, "the key test did not reach the API base"
    dialog.reject()


async def test_key_test_reports_an_unreachable_base(window):
    dialog = window.open_settings()
    dialog.ctx.api_base_overridden = False
    dialog.editors["api_base"].widget.setEnabled(True)
    dialog.editors["api_base"].put("http://127.0.0.1:9")
    dialog.key_edit.setText("k-123456")
    verdict = await dialog.run_key_test()
    assert verdict.startswith("✗ Could not check the key")
    dialog.reject()


async def test_log_view_shows_and_filters_lines(window):
    window.toggle_log()
    assert window.log_dock.isVisible() and window.log_action.isChecked()
    view = window.log_view
    logging.getLogger("civitgrab_desktop.test").warning("a warning for the log view")
    logging.getLogger("civitgrab_desktop.test").info("an info line for the log view")
    await wait_until(lambda: "a warning for the log view" in view.visible_text(), 5)
    assert "an info line" in view.visible_text()
    view.level.setCurrentIndex(2)  # warnings and above
    assert "a warning for the log view" in view.visible_text()
    assert "an info line" not in view.visible_text()
    view.filter.setText("nothing matches this")
    assert view.visible_text() == ""
    view.filter.clear()
    view.clear_button.click()
    assert view.visible_text() == ""


async def test_exception_hook_logs_and_shows_a_dialog(window, caplog):
    from civitgrab_desktop.app import ExceptionHook

    hook = ExceptionHook("log.txt")
    hook.parent = window
    try:
        raise ValueError("boom for the hook")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR):
            hook(type(exc), exc, exc.__traceback__)
            hook(type(exc), exc, exc.__traceback__)
    assert hook.dialog is not None and hook.dialog.isVisible()
    assert "boom for the hook" in hook.dialog.text()
    assert "2 times" in hook.dialog.informativeText()
    assert "log.txt" in hook.dialog.informativeText()
    assert "boom for the hook" in caplog.text
    hook.dialog.close()


async def test_window_state_persists(qapp, data_dir, fake_civitai):
    from tests.gui.conftest import close_window, make_window

    first = make_window(data_dir, fake_civitai.base_url)
    first.show()
    await first.started()
    first.resize(1100, 700)
    first.show_page("convert")
    first.page("download").splitter.setSizes([520, 500])
    sizes = first.page("download").splitter.sizes()
    first.page("download").output.set_path("/tmp/somewhere-else")
    await close_window(first)
    first.deleteLater()
    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved["window/geometry"] and saved["window/page"] == 2

    second = make_window(data_dir, fake_civitai.base_url)
    try:
        assert second.current_page().key == "convert"
        assert second.page("download").output.path() == "/tmp/somewhere-else"
        assert second.size().width() == 1100 or second.size().width() == 1280  # make_window resizes
        second.show()
        second.show_page("download")
        await asyncio.sleep(0.1)
        assert abs(second.page("download").splitter.sizes()[0] - sizes[0]) <= 40
    finally:
        await close_window(second)
        second.deleteLater()


async def test_theme_follows_the_system(window, monkeypatch):
    from civitgrab_desktop.gui import theme as theme_mod

    app = QApplication.instance()
    manager = window.theme_manager
    hints = app.styleHints()
    system = {"dark": False}
    monkeypatch.setattr(theme_mod, "system_is_dark", lambda: system["dark"])
    try:
        manager.apply("system")
        assert not manager.colors.dark
        system["dark"] = True  # the desktop switches to dark (offscreen Qt cannot, so we emit it)
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        await wait_until(lambda: manager.colors.dark, 5, what="the dark palette")
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        system["dark"] = False
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        await wait_until(lambda: not manager.colors.dark, 5, what="the light palette")
        # an explicit choice wins over the system
        window.theme_actions["dark"].trigger()
        assert manager.colors.dark and window.ctx.settings.get("theme") == "dark"
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        await asyncio.sleep(0.1)
        assert manager.colors.dark
    finally:
        manager.apply("light")


async def test_quitting_lets_reads_finish_and_cancels_what_would_outlive_the_loop(qapp, data_dir, fake_civitai):
    """Background reads in flight when the window quits end before the library closes; a task
    that would outlive the quit is cancelled, so nothing runs after the loop and library are gone."""
    import time as _time

    from civitgrab_desktop.gui.util import background_tasks, spawn

    w = make_window(data_dir, fake_civitai.base_url)
    w.show()
    await w.started()
    reader = await w.ctx.reader()
    read = spawn(reader.run(lambda _store: (_time.sleep(0.5), "read")[1]), name="slow-read")
    stuck = spawn(asyncio.sleep(60), name="stuck")
    started = _time.monotonic()
    await close_window(w)
    w.deleteLater()
    assert read.done() and not read.cancelled() and read.result() == "read"
    assert stuck.cancelled()
    assert _time.monotonic() - started < 20
    assert all(t.done() for t in background_tasks())
