"""The Gallery page's actions on images, as the user meets them: the context menu, and the
confirmations and status messages around gui/gallery/actions.py's open, show in folder, fetch tags,
convert and delete. A mixin of GalleryPage (gui/gallery/page.py), which owns the grid, the model,
the thumbnail loader and the detail pane these use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from PySide6.QtCore import QPoint
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox

from civitgrab_desktop.core.library.deleting import ImageBusyError
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.dialogs import confirm
from civitgrab_desktop.gui.gallery import actions
from civitgrab_desktop.gui.util import plural, spawn

LOG = logging.getLogger(__name__)


class PageActions:
    """Open, show in folder, fetch tags, convert, delete, and the context menu offering them."""

    def _file_of(self, image_id: int) -> str | None:
        item = self.model.item_by_id(image_id)
        if item is not None:
            return item.file
        if self.detail.image_id == image_id and self.detail.detail is not None:
            return self.detail.detail.row.path
        return None

    def open_file(self, image_id: int) -> bool:
        path = self._file_of(image_id)
        why = actions.openable(path)
        ok = why is None and actions.open_file(path)
        if not ok:
            self.ctx.statusMessage.emit(f"Not opened: {why or 'the system could not open it'}.", 5000)
        return ok

    def reveal(self, image_id: int) -> bool:
        return actions.reveal_in_folder(self._file_of(image_id))

    def fetch_tags(self, image_id: int) -> None:
        spawn(self._run_job(actions.fetch_tags_now(self.ctx, image_id, window=self.window()), [image_id],
                            failed="Could not fetch the tags", started=f"Fetching the tags of image {image_id}…",
                            ended=f"Tags of image {image_id}"), name="gallery-fetch-tags")

    def convert(self, image_id: int) -> QMessageBox | None:
        """Convert one image now with the Converter page's options (asks first when they say
        "in place", which replaces the original)."""
        options = actions.convert_options(self.ctx, self.window())

        def start() -> None:
            spawn(self._run_job(actions.convert_now(self.ctx, image_id, options), [image_id],
                                failed="Could not convert", started=f"Converting image {image_id}…",
                                ended=f"Conversion of image {image_id}"), name="gallery-convert")

        if not options.get("in_place"):
            start()
            return None
        self._confirm = confirm(
            self,
            title="Convert in place?",
            text=f"Image {image_id} will be replaced by its WebP.",
            detail="The Converter page is set to convert in place; the original is removed after the WebP is verified.",
            action="Convert in place",
            on_yes=start,
        )
        return self._confirm

    def refresh_metadata(self, image_ids: list[int]) -> None:
        image_ids = list(image_ids)
        # refresh_metadata_now says what it starts; the pane re-reads the rewritten files at the end
        spawn(self._run_job(actions.refresh_metadata_now(self.ctx, image_ids), image_ids,
                            failed="Could not refresh the metadata"), name="gallery-refresh-metadata")

    async def _run_job(self, starting, image_ids: list[int], *, failed: str, started: str | None = None,
                       ended: str | None = None):
        """Await `starting` (it returns a JobHandle), say so in the status bar, and once the job
        ends reload these images' cards and the detail pane (their files or states changed)."""
        try:
            handle = await starting
        except Exception as exc:
            self.ctx.statusMessage.emit(f"{failed}: {exc}", 8000)
            raise
        if started:
            self.ctx.statusMessage.emit(started, 4000)

        def finished(state: str, _summary) -> None:
            if ended:
                self.ctx.statusMessage.emit(f"{ended}: {state}", 6000)
            spawn(self._after_changes(image_ids), name="gallery-after-job")

        handle.bridge.finished.connect(finished)
        return handle

    async def _after_changes(self, image_ids: list[int]) -> None:
        for image_id in image_ids:
            self.loader.forget(image_id, disk=False)
        await self.model.reload_items(image_ids)
        shown = self.detail.image_id
        if shown in image_ids:
            await self.detail.show_image(shown, self._poster(shown), play=False)

    def confirm_delete(self, ids: list[int]) -> QMessageBox | None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return None
        self._confirm = confirm(
            self,
            title="Delete from disk and library?",
            text=f"Delete {plural(len(ids), 'image')} from disk and from the library?" if len(ids) > 1
            else f"Delete image {ids[0]} from disk and from the library?",
            detail="Its files (the download, per-query copies, the converted WebP and the sidecars) are removed, "
                   "and civitgrab forgets it. Only files inside your download and convert folders are touched. "
                   "This cannot be undone.",
            action="Delete",
            destructive=True,
            on_yes=lambda: spawn(self.delete_ids(ids), name="gallery-delete"),
        )
        return self._confirm

    async def delete_ids(self, ids: list[int]) -> actions.FileRemoval | None:
        library = await self.ctx.library()
        try:
            deleted = await library.delete_images(ids)
        except ImageBusyError as exc:
            self.ctx.statusMessage.emit(str(exc), 8000)
            return None
        roots = await actions.known_roots(self.ctx, library)
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(None, actions.remove_files, deleted, roots)
        gone = {d.id for d in deleted}
        for image_id in ids:
            self.loader.forget(image_id)
        if self.detail.image_id in set(ids):
            self.detail.clear("Deleted.")
        self.model.remove_ids(set(ids))
        self._update_empty()
        message = f"Deleted {plural(len(gone), 'image')} and {plural(len(outcome.removed), 'file')}."
        if outcome.kept:
            message += f" {plural(len(outcome.kept), 'file')} left on disk (see the log)."
            for path, why in outcome.kept:
                LOG.warning("not deleted: %s (%s)", path, why)
        self.ctx.statusMessage.emit(message, 8000)
        with contextlib.suppress(Exception):
            self._signature = await (await self.ctx.reader()).library_signature()
        return outcome

    def _context_menu(self, pos: QPoint) -> QMenu | None:
        index = self.view.indexAt(self.view.viewport().mapFromGlobal(pos))
        if not index.isValid():
            return None
        image_id = self.model.id_at(index.row())
        item = self.model.item(index.row())
        if image_id is None:
            return None
        selected = self.view.selected_ids() or [image_id]
        menu = QMenu(self)
        entries: list[tuple[str, str, Any, bool]] = [
            ("Show details", "info", lambda: self.activate_item(image_id), True),
            ("Quick preview", "image", lambda: self.quick_preview(image_id), item is not None),
            ("Open", "external", lambda: self.open_file(image_id), bool(item and item.file)),
            ("Show in folder", "folder", lambda: self.reveal(image_id), bool(item and item.file)),
            ("Open on CivitAI", "link", lambda: actions.open_on_civitai(self.ctx, image_id), True),
            ("Fetch tags now", "tag", lambda: self.fetch_tags(image_id), True),
            ("Convert now", "convert", lambda: self.convert(image_id),
             bool(item and not item.is_video and item.cv_state != "done")),
            ("Refresh metadata in the WebP", "retry", lambda: self.refresh_metadata(selected),
             bool(item and not item.is_video and item.cv_state == "done")),
        ]
        for text, icon, slot, enabled in entries:
            action = QAction(icons.icon(icon), text, menu)
            action.setEnabled(enabled)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.addSeparator()
        label = "Delete…" if len(selected) == 1 else f"Delete {len(selected)} images…"
        delete = QAction(icons.icon("trash"), label, menu)
        delete.triggered.connect(lambda: self.confirm_delete(selected))
        menu.addAction(delete)
        menu.popup(pos)
        self._menu = menu
        return menu
