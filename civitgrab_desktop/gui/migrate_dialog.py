"""File → Import from the classic tool: pick the classic folder, import its tracking data (read
only), then ask which of the folders the imported files live in civitgrab may change.

Nothing is trusted without the user's answer (core/roots.py): the folder they picked is offered
checked, every folder outside it unchecked and marked as such, a drive's top or the home folder
cannot be chosen at all. "Keep all read-only" trusts nothing: the images are shown and exported,
their files are never converted in place, re-tagged, linked into or deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.library.classic_import import ImportReport
from civitgrab_desktop.core.roots import Roots, too_broad
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.jobs.migrate import import_classic

LOG = logging.getLogger(__name__)

CLASSIC_FILES = ("downloaded_images.json", "tracking_database.sqlite")


@dataclass(frozen=True)
class FolderChoice:
    folder: Path
    files: int
    inside_pick: bool  # inside the folder the user picked
    already_trusted: bool
    refused: str | None  # why it can never be a root (a drive, the home folder)


def folder_choices(report: ImportReport, picked: Path, roots: Roots) -> list[FolderChoice]:
    """One line for the picked folder (all its subfolders' files), one per folder outside it."""
    picked = picked.resolve()
    inside = 0
    outside: dict[Path, int] = {}
    for text, count in report.folders.items():
        folder = Path(text)
        if folder == picked or folder.is_relative_to(picked):
            inside += count
        else:
            outside[folder] = outside.get(folder, 0) + count
    choices = []
    if inside:
        choices.append(FolderChoice(picked, inside, True, roots.covers(picked), too_broad(picked)))
    for folder, count in sorted(outside.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        choices.append(FolderChoice(folder, count, False, roots.covers(folder), too_broad(folder)))
    return choices


class TrustFoldersDialog(QDialog):
    """Which folders of the import may civitgrab change? `chosen()` after it was accepted."""

    def __init__(self, report: ImportReport, choices: list[FolderChoice], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Imported from the classic tool")
        self.setMinimumWidth(620)
        self.choices = choices
        layout = QVBoxLayout(self)
        summary = QLabel(
            f"Read {report.entries:,} classic entries: {plural(report.images_new, 'new image')}, "
            f"{report.missing_files} file(s) missing on disk, {plural(report.errors, 'problem')}."
        )
        summary.setWordWrap(True)
        layout.addWidget(summary)
        question = QLabel(
            "The imported files live in the folders below. civitgrab only reads them unless you let it "
            "change files there (convert in place, write tag sidecars, delete from disk). Check only folders "
            "you trust; files anywhere else stay read-only: shown and exported, never changed."
        )
        question.setTextFormat(Qt.TextFormat.PlainText)
        question.setWordWrap(True)
        layout.addWidget(question)
        self.folders = QListWidget()
        for choice in choices:
            where = "the folder you picked" if choice.inside_pick else "outside the folder you picked"
            text = f"{choice.folder}  —  {plural(choice.files, 'file')}, {where}"
            if choice.refused:
                text += f" (cannot be trusted: {choice.refused})"
            elif choice.already_trusted:
                text += " (already trusted)"
            item = QListWidgetItem(text)
            enabled = not choice.refused and not choice.already_trusted
            flags = Qt.ItemFlag.ItemIsEnabled | (Qt.ItemFlag.ItemIsUserCheckable if enabled else Qt.ItemFlag.NoItemFlags)
            item.setFlags(flags)
            checked = choice.already_trusted or (enabled and choice.inside_pick)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            item.setToolTip(str(choice.folder))
            self.folders.addItem(item)
        layout.addWidget(self.folders)
        buttons = QDialogButtonBox()
        self.trust_button = buttons.addButton("Allow changes in checked folders", QDialogButtonBox.ButtonRole.AcceptRole)
        self.read_only_button = buttons.addButton("Keep all read-only", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> list[Path]:
        """The folders to add as roots (checked, not refused, not trusted already)."""
        picked = []
        for row, choice in enumerate(self.choices):
            item = self.folders.item(row)
            if item.checkState() == Qt.CheckState.Checked and not choice.refused and not choice.already_trusted:
                picked.append(choice.folder)
        return picked


class ClassicImport:
    """The flow, owned by the main window: folder dialog → import → trust dialog → roots."""

    def __init__(self, window):
        self.window = window
        self.ctx = window.ctx
        self.dialog: QDialog | None = None  # the open dialog (tests answer it)
        self.last_report: ImportReport | None = None
        self.answered: asyncio.Future | None = None  # the folders trusted, once the user answered

    def start(self) -> QFileDialog:
        dialog = QFileDialog(self.window, "Choose the classic tool's folder (with downloaded_images.json "
                             "or tracking_database.sqlite)")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: spawn(self.run(Path(path)), name="classic-import"))
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog

    async def run(self, folder: Path) -> TrustFoldersDialog | None:
        json_path, sqlite_path = (folder / name for name in CLASSIC_FILES)
        if not json_path.is_file() and not sqlite_path.is_file():
            self.ctx.statusMessage.emit(f"No {' or '.join(CLASSIC_FILES)} in {folder}.", 8000)
            return None
        self.ctx.statusMessage.emit(f"Importing the classic tool's data from {folder}…", 0)
        library = await self.ctx.library()
        report = await library.call(
            import_classic,
            json_path=json_path if json_path.is_file() else None,
            sqlite_path=sqlite_path if sqlite_path.is_file() else None,
        )
        self.last_report = report
        for message in report.messages[:50]:
            LOG.warning("classic import: %s", message)
        roots = await library.roots()
        self.answered = asyncio.get_running_loop().create_future()
        box = TrustFoldersDialog(report, folder_choices(report, folder, roots), self.window)
        box.finished.connect(lambda result: spawn(self._answered(box, result), name="classic-trust"))
        self.dialog = box
        box.open()
        return box

    async def _answered(self, box: TrustFoldersDialog, result: int) -> list[str]:
        added: list[str] = []
        if result == QDialog.DialogCode.Accepted:
            library = await self.ctx.library()
            for folder in box.chosen():
                added.append(await library.add_root(folder, "classic"))
        report = self.last_report
        count = report.images_new + report.images_updated if report else 0
        trusted = f"; civitgrab may change files in {plural(len(added), 'folder')}" if added else "; all read-only"
        self.ctx.statusMessage.emit(f"Imported {plural(count, 'image')} from the classic tool{trusted}.", 10000)
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(added)
        return added
