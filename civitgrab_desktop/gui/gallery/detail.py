"""The detail pane beside the grid: the image (scaled) or the playing video, its generation
parameters, tags with scores, the queries that found it, its files, and the actions.

Everything shown is read in one reader-thread call (detail_read.py: row, tags, sources, conversion,
and what the file itself carries); a newer selection supersedes a slower older read.
Prompt, negative prompt and settings are the file's own when it has them (the converted WebP, else
the download), each labelled with where in the file it was found; the library's copy of CivitAI's
data fills in what the file lacks, and says so. Text from the service or a file is shown as plain
text, never as rich text.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.media.readback import FileFacts
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery import actions
from civitgrab_desktop.gui.gallery.detail_read import Detail, read_detail
from civitgrab_desktop.gui.gallery.detail_widgets import (
    PathLabel,
    chip_label,
    clear_form,
    nsfw_chip,
    section_label,
    source_label,
    value_label,
)
from civitgrab_desktop.gui.gallery.flow import FlowLayout
from civitgrab_desktop.gui.gallery.media_view import MediaView
from civitgrab_desktop.gui.util import human_bytes, spawn

LOG = logging.getLogger(__name__)

SOURCE_LABELS = {
    "username": "User",
    "model": "Model",
    "modelVersion": "Model version",
    "tag": "Tag",
    "update": "Update",
    "classic": "Imported",
}


FILE_SETTINGS_SKIPPED = {"Model", "Hashes"}  # the model is shown from the library; hashes are noise here
FILE_SETTINGS_LABELS = {"Version": "WebUI version"}  # A1111's own version, not the model version


def _display_value(key: str, value: str) -> str:
    if key == "CFG scale":
        try:
            return f"{float(value):g}"
        except ValueError:
            return value
    return value


class DetailPane(QWidget):
    openRequested = Signal(int)
    revealRequested = Signal(int)
    fetchTagsRequested = Signal(int)
    convertRequested = Signal(int)
    deleteRequested = Signal(int)
    closeRequested = Signal()
    shown = Signal(int)  # an image's details were filled in

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("DetailPane")
        self.setMinimumWidth(300)
        self.image_id: int | None = None
        self.detail: Detail | None = None
        self._token = 0

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        body = QWidget()
        body.setObjectName("DetailBody")
        scroll.setWidget(body)
        self.scroll = scroll
        col = QVBoxLayout(body)
        col.setContentsMargins(12, 4, 12, 12)
        col.setSpacing(6)

        head = QHBoxLayout()
        self.title = QLabel("Nothing selected")
        self.title.setObjectName("SectionTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(self.title, 1)
        self.close_button = QToolButton()
        icons.set_icon(self.close_button, "close")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Hide the detail pane")
        self.close_button.clicked.connect(self.closeRequested)
        head.addWidget(self.close_button)
        col.addLayout(head)

        self.media = MediaView(self)
        self.media.setMinimumHeight(220)
        self.media.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.media.setFixedHeight(300)
        col.addWidget(self.media)

        self.chips_box = QWidget()
        self.chips = FlowLayout(self.chips_box, spacing=5)
        col.addWidget(self.chips_box)

        actions_box = QWidget()
        self.actions_flow = FlowLayout(actions_box, spacing=4)
        self.buttons: dict[str, QToolButton] = {}
        for key, text, icon, tip in (
            ("open", "Open", "external", "Open the file in the default app (Enter in the grid shows it full size)"),
            ("reveal", "Show in folder", "folder", "Show the file in the file manager"),
            ("copy_prompt", "Copy prompt", "log", "Copy the prompt to the clipboard"),
            ("civitai", "CivitAI page", "link", "Open the image's page on CivitAI"),
            ("tags", "Fetch tags", "tag", "Fetch this image's community tags now"),
            ("convert", "Convert", "convert", "Convert this image to WebP now (with the Converter page's options)"),
            ("delete", "Delete", "trash", "Delete the file(s) and remove the image from the library"),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            icons.set_icon(button, icon)
            button.setAutoRaise(False)
            button.setEnabled(False)
            self.actions_flow.addWidget(button)
            self.buttons[key] = button
        self.buttons["open"].clicked.connect(lambda: self._emit(self.openRequested))
        self.buttons["reveal"].clicked.connect(lambda: self._emit(self.revealRequested))
        self.buttons["copy_prompt"].clicked.connect(self.copy_prompt)
        self.buttons["civitai"].clicked.connect(self.open_civitai)
        self.buttons["tags"].clicked.connect(lambda: self._emit(self.fetchTagsRequested))
        self.buttons["convert"].clicked.connect(lambda: self._emit(self.convertRequested))
        self.buttons["delete"].clicked.connect(lambda: self._emit(self.deleteRequested))
        col.addWidget(actions_box)

        col.addWidget(section_label("Prompt"))
        self.prompt = value_label()
        col.addWidget(self.prompt)
        self.prompt_source = source_label()
        col.addWidget(self.prompt_source)
        self.negative_title = section_label("Negative prompt")
        col.addWidget(self.negative_title)
        self.negative = value_label()
        self.negative.setObjectName("Muted")
        col.addWidget(self.negative)

        col.addWidget(section_label("Generation"))
        self.generation_form = QFormLayout()
        self.generation_form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.generation_form.setHorizontalSpacing(12)
        self.generation_form.setVerticalSpacing(3)
        col.addLayout(self.generation_form)
        self.settings_source = source_label()
        col.addWidget(self.settings_source)

        col.addWidget(section_label("Tags"))
        self.tags_box = QWidget()
        self.tags_flow = FlowLayout(self.tags_box, spacing=5)
        col.addWidget(self.tags_box)
        self.tags_note = QLabel("")
        self.tags_note.setObjectName("Muted")
        self.tags_note.setWordWrap(True)
        col.addWidget(self.tags_note)
        self.tags_source = source_label()
        col.addWidget(self.tags_source)

        col.addWidget(section_label("Found by"))
        self.sources_label = value_label()
        col.addWidget(self.sources_label)

        col.addWidget(section_label("Files"))
        self.files_form = QFormLayout()
        self.files_form.setHorizontalSpacing(12)
        self.files_form.setVerticalSpacing(3)
        col.addLayout(self.files_form)
        col.addStretch(1)
        self.fields: dict[str, QLabel] = {}
        self.clear()

    # -- showing ----------------------------------------------------------------------------------

    def clear(self, message: str = "Select an image to see its details.") -> None:
        self._token += 1
        self.image_id = None
        self.detail = None
        self.title.setText("Nothing selected")
        self.media.clear(message)
        self._fill_chips([])
        self.prompt.setText("—")
        for label in (self.prompt_source, self.settings_source, self.tags_source):
            label.setText("")
            label.hide()
        self.negative.setText("")
        self.negative_title.hide()
        self.negative.hide()
        clear_form(self.generation_form)
        clear_form(self.files_form)
        self.tags_flow.clear()
        self.tags_note.setText("")
        self.tags_note.hide()
        self.sources_label.setText("—")
        self.fields = {}
        for button in self.buttons.values():
            button.setEnabled(False)

    async def show_image(self, image_id: int, poster: QImage | None = None, *, play: bool = True) -> Detail | None:
        """Read and show `image_id`; returns what was shown (None: not in the library)."""
        self._token += 1
        token = self._token
        library = await self.ctx.library()
        detail = await library.reader().run(read_detail, int(image_id))
        if token != self._token:
            return detail
        if detail is None:
            self.clear("This image is no longer in the library.")
            return None
        self._show(detail, poster, play=play)
        return detail

    def show_soon(self, image_id: int, poster: QImage | None = None) -> None:
        spawn(self.show_image(image_id, poster), name="detail-show")

    def _show(self, detail: Detail, poster: QImage | None, *, play: bool) -> None:
        row = detail.row
        if row.id != self.image_id:  # another image: from its top (a re-read keeps the place)
            self.scroll.verticalScrollBar().setValue(0)
        self.image_id = row.id
        self.detail = detail
        kind = "Video" if row.is_video else "Image"
        self.title.setText(f"{kind} #{row.id}")
        path = row.path if row.path else (detail.conversion.webp_path if detail.conversion else None)
        if row.is_video:
            self.media.show_video(path, poster, autoplay=play)
        else:
            self.media.show_image(path, poster)

        chips = [(nsfw_chip(row.nsfw_level), "")]
        if row.width and row.height:
            chips.append((chip_label(f"{row.width}×{row.height}"), ""))
        chips.append((chip_label("Tags fetched" if row.tag_state == "done" else
                             ("Tag fetch failed" if row.tag_state == "failed" else "No tags yet"),
                             row.tag_error or "", "success" if row.tag_state == "done" else
                             ("danger" if row.tag_state == "failed" else "muted")), ""))
        if row.cv_state == "done" and row.is_video:
            chips.append((chip_label("Organized", "Copied into the organized CivitAI_Browse layout", "success"), ""))
        elif row.cv_state == "done":
            chips.append((chip_label("WebP", "Converted to WebP", "success"), ""))
        elif row.cv_state == "failed":
            chips.append((chip_label("Convert failed", row.cv_error or "", "danger"), ""))
        if row.gone_at:
            chips.append((chip_label("Gone from CivitAI", f"Not listed since {row.gone_at[:10]}", "warning"), ""))
        self._fill_chips([c for c, _ in chips])

        info = detail.info
        facts = detail.file
        prompt, negative = info.prompt, info.negative_prompt
        if facts is not None and facts.prompt:
            prompt = facts.prompt
            negative = facts.negative if facts.prompt_from == facts.settings_from else (facts.negative or negative)
            where = f"From the file: {facts.prompt_from}"
        elif facts is not None and prompt:
            where = f"From the library (CivitAI's data): {_file_lacks(facts, 'no prompt')}"
        else:
            where = ""
        self.prompt.setText(prompt or "No prompt")
        self._set_source(self.prompt_source, where)
        if negative:
            self.negative.setText(negative)
            self.negative_title.show()
            self.negative.show()
        else:
            self.negative_title.hide()
            self.negative.hide()

        clear_form(self.generation_form)
        self.fields = {}
        gen_rows: list[tuple[str, str]] = info.as_rows()
        if facts is not None and facts.settings:
            gen_rows = [(FILE_SETTINGS_LABELS.get(k, k), _display_value(k, v)) for k, v in facts.settings
                        if k not in FILE_SETTINGS_SKIPPED and v]
            self._set_source(self.settings_source, f"Settings from the file: {facts.settings_from}")
        elif facts is not None and gen_rows:
            self._set_source(self.settings_source,
                             f"Settings from the library (CivitAI's data): {_file_lacks(facts, 'no settings')}")
        else:
            self._set_source(self.settings_source, "")
        if facts is not None and facts.comfy_from:
            gen_rows.append(("Workflow", f"ComfyUI graph in {facts.comfy_from}"))
        model = row.checkpoint_name or info.model
        if model:
            gen_rows.append(("Model", model))
        if row.model_version_name:
            gen_rows.append(("Version", row.model_version_name))
        if row.base_model:
            gen_rows.append(("Base model", row.base_model))
        if info.loras:
            gen_rows.append(("LoRAs", "\n".join(r.label() for r in info.loras)))
        if info.embeddings:
            gen_rows.append(("Embeddings", "\n".join(r.label() for r in info.embeddings)))
        gen_rows.append(("User", row.username or "unknown"))
        if row.created_at:
            gen_rows.append(("Created", row.created_at.replace("T", " ")[:19]))
        gen_rows.append(("Reactions", f"{row.reactions:,}"))
        for label, value in gen_rows:
            self._add_field(self.generation_form, label, value)

        self.tags_flow.clear()
        if detail.tags:
            for tag in detail.tags:
                tip = f"{tag['up_votes']} up, {tag['down_votes']} down"
                if tag.get("type"):
                    tip = f"{tag['type']} · {tip}"
                if tag.get("automated"):
                    tip += " · automated"
                if tag.get("needs_review"):
                    tip += " · needs review"
                self.tags_flow.addWidget(chip_label(f"{tag['name']}  {tag['score']}", tip))
            self.tags_note.setText("")
        elif row.tag_state == "done":
            self.tags_note.setText("CivitAI lists no community tags for this image.")
        elif row.tag_state == "failed":
            self.tags_note.setText(f"Fetching the tags failed: {row.tag_error or 'unknown error'}")
        else:
            self.tags_note.setText("Tags not fetched yet — use “Fetch tags”.")
        self.tags_note.setVisible(bool(self.tags_note.text()))
        self._set_source(self.tags_source, _tags_in_file(facts, detail.tags))

        if detail.sources:
            lines = []
            for s in detail.sources:
                kind_label = SOURCE_LABELS.get(s.target_type, s.target_type)
                line = f"<b>{html.escape(kind_label)}</b> {html.escape(str(s.target_value))}"
                if s.path and s.path != row.path:
                    line += f"<br><span style='font-size:small'>{html.escape(s.path)}</span>"
                lines.append(line)
            self.sources_label.setTextFormat(Qt.TextFormat.RichText)
            self.sources_label.setText("<br>".join(lines))
        else:
            self.sources_label.setTextFormat(Qt.TextFormat.PlainText)
            self.sources_label.setText("No source recorded")

        clear_form(self.files_form)
        if row.path:
            self._add_field(self.files_form, "File", row.path, path=True)
        else:
            self._add_field(self.files_form, "File", "not on disk")
        if row.bytes:
            self._add_field(self.files_form, "Size", f"{human_bytes(row.bytes)} · {row.mime or '?'}")
        if row.downloaded_at:
            self._add_field(self.files_form, "Downloaded", row.downloaded_at.replace("T", " ")[:19])
        if detail.conversion is not None:
            conv = detail.conversion
            self._add_field(self.files_form, "Organized copy" if row.is_video else "WebP", conv.webp_path, path=True)
            if conv.webp_bytes and not row.is_video:
                saved = f"{human_bytes(conv.webp_bytes)}"
                if conv.src_bytes:
                    saved += f" (was {human_bytes(conv.src_bytes)})"
                self._add_field(self.files_form, "WebP size", saved)
        self._add_field(self.files_form, "CivitAI", actions.civitai_url(self.ctx, row.id))

        has_file = bool(path)
        self.buttons["open"].setEnabled(has_file)
        self.buttons["reveal"].setEnabled(has_file)
        self.buttons["copy_prompt"].setEnabled(bool(prompt))
        self.buttons["civitai"].setEnabled(True)
        self.buttons["tags"].setEnabled(row.dl_state == "done")
        self.buttons["convert"].setEnabled(row.dl_state == "done" and not row.is_video and row.cv_state != "done")
        self.buttons["convert"].setToolTip(
            "Videos are not converted" if row.is_video else
            ("Already converted" if row.cv_state == "done" else "Convert this image to WebP now")
        )
        self.buttons["delete"].setEnabled(True)
        self.shown.emit(row.id)

    @staticmethod
    def _set_source(label: QLabel, text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    def _fill_chips(self, chips: list[QLabel]) -> None:
        self.chips.clear()
        for chip in chips:
            self.chips.addWidget(chip)

    def _add_field(self, form: QFormLayout, label: str, value: str, *, path: bool = False) -> None:
        name = QLabel(label)
        name.setObjectName("Muted")
        field = PathLabel(value) if path else value_label(value)
        form.addRow(name, field)
        self.fields[label] = field

    # -- actions ----------------------------------------------------------------------------------

    def _emit(self, signal) -> None:
        if self.image_id is not None:
            signal.emit(self.image_id)

    def shown_prompt(self) -> str | None:
        """The prompt the pane shows (the file's when it has one, else the library's)."""
        if self.detail is None:
            return None
        facts = self.detail.file
        return (facts.prompt if facts is not None and facts.prompt else None) or self.detail.info.prompt

    def copy_prompt(self) -> bool:
        prompt = self.shown_prompt()
        if not prompt:
            return False
        actions.copy_text(prompt)
        self.ctx.statusMessage.emit("Prompt copied to the clipboard.", 3000)
        return True

    def open_civitai(self) -> bool:
        if self.image_id is None:
            return False
        return actions.open_on_civitai(self.ctx, self.image_id)

    def close_media(self) -> None:
        self.media.clear()


def _file_lacks(facts: FileFacts, what: str) -> str:
    if facts.problem:
        return facts.problem
    return f"the file carries {what}"


def _tags_in_file(facts: FileFacts | None, library_tags: list[dict[str, Any]]) -> str:
    if facts is None:
        return ""
    if facts.problem:
        return f"Tags in the file: unknown ({facts.problem})"
    if not facts.tags:
        return "The file carries no tags" + (" — “Refresh metadata in the WebP” writes them" if library_tags and
                                             facts.path and facts.path.lower().endswith(".webp") else "")
    text = f"In the file: {len(facts.tags)} tag{'s' if len(facts.tags) != 1 else ''} in {facts.tags_from}"
    names = {str(t.get("name")) for t in library_tags}
    if library_tags and set(facts.tags) != names:
        text += f" (the library has {len(library_tags)}; “Refresh metadata in the WebP” updates the file)"
    return text
