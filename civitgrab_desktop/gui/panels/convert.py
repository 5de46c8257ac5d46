"""Converter: JPG/PNG → WebP with metadata and tags in EXIF and XMP (the options of `civitgrab-cli convert`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.dialogs import confirm
from civitgrab_desktop.gui.panels.work import WorkPage
from civitgrab_desktop.gui.util import human_bytes, spawn
from civitgrab_desktop.gui.widgets.common import Collapsible, FolderPicker, hint, section_title

LOG = logging.getLogger(__name__)

VIDEO_CHOICES = [
    ("copy", "Copy videos into the folder"),
    ("move", "Move videos into the folder"),
    (None, "Leave videos where they are"),
]
NSFW_CLASSES = [(None, "SFW and NSFW"), ("sfw", "SFW only"), ("nsfw", "NSFW only")]


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setHorizontalSpacing(10)
    form.setVerticalSpacing(8)
    return form


class ConvertPage(WorkPage):
    key = "convert"
    title = "Converter"
    subtitle = "Convert downloaded JPG/PNG to WebP with the full metadata and tags embedded, verified by perceptual hash."
    icon_name = "convert"
    job_kind = "convert"
    job_module = "civitgrab_desktop.jobs.convert"
    feature = "WebP conversion"
    start_label = "Convert"
    start_icon = "convert"
    empty_text = "No conversions yet — choose where the WebP files go and press Convert."
    more_job_kinds = ("refresh_metadata",)

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        s = ctx.settings
        body = self.options.body

        # -- output --
        body.addWidget(section_title("Output"))
        self.where = QButtonGroup(self)
        self.to_folder = QRadioButton("Organized copy in a folder (CivitAI_Browse/…)")
        self.to_folder.setToolTip("Images/{SFW,NSFW}/<model version>/<user>/<id>.webp; the originals stay")
        self.in_place = QRadioButton("In place — replace each original after verification")
        self.in_place.setToolTip("The WebP is written next to the original, re-read and compared; only then is the original removed")
        self.where.addButton(self.to_folder)
        self.where.addButton(self.in_place)
        self.to_folder.setChecked(True)
        body.addWidget(self.to_folder)
        sub = QWidget()
        sub_layout = QVBoxLayout(sub)
        sub_layout.setContentsMargins(24, 0, 0, 4)
        sub_layout.setSpacing(6)
        self.dest = FolderPicker("Converted files folder")
        base = ctx.default_output_dir()
        self.dest.set_path(str(Path(base) / "CivitAI_Browse") if base else "")
        sub_layout.addWidget(self.dest)
        self.videos = QComboBox()
        for value, label in VIDEO_CHOICES:
            self.videos.addItem(label, value)
        self.videos.setToolTip("Videos are not converted; they can join the organized folder")
        sub_layout.addWidget(self.videos)
        body.addWidget(sub)
        body.addWidget(self.in_place)
        self.to_folder.toggled.connect(self._update_where)

        # -- WebP --
        body.addSpacing(4)
        body.addWidget(section_title("WebP"))
        form = _form()
        quality_row = QHBoxLayout()
        self.quality_slider = QSlider(Qt.Orientation.Horizontal)
        self.quality_slider.setRange(1, 100)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality_slider.valueChanged.connect(self.quality.setValue)
        self.quality.valueChanged.connect(self.quality_slider.setValue)
        self.quality.setValue(int(s.get("convert_quality")))
        self.quality.setToolTip("WebP quality 1-100 (90 keeps images visually identical at a fraction of the size)")
        quality_row.addWidget(self.quality_slider, 1)
        quality_row.addWidget(self.quality)
        form.addRow("Quality", quality_row)
        self.lossless = QCheckBox("Lossless (larger files, pixel-exact)")
        self.lossless.setChecked(bool(s.get("convert_lossless")))
        self.lossless.toggled.connect(self._update_quality)
        form.addRow("", self.lossless)
        self.phash = QSpinBox()
        self.phash.setRange(0, 64)
        self.phash.setValue(int(s.get("phash_threshold")))
        self.phash.setToolTip("Largest perceptual-hash distance accepted between the original and the WebP (0-64)")
        form.addRow("pHash threshold", self.phash)
        self.pg13 = QCheckBox("Count PG-13 images as NSFW")
        self.pg13.setChecked(bool(s.get("pg13_is_nsfw")))
        form.addRow("", self.pg13)
        body.addLayout(form)

        # -- which images --
        body.addSpacing(4)
        body.addWidget(section_title("Which images"))
        self.only_tagged = QCheckBox("Only images whose tags were fetched")
        self.only_tagged.setToolTip("Convert after tagging, so the WebP carries the tags in its EXIF")
        body.addWidget(self.only_tagged)
        filters = QWidget()
        fform = _form()
        fform.setContentsMargins(0, 0, 0, 0)
        filters.setLayout(fform)
        self.username = QLineEdit()
        self.username.setPlaceholderText("any user")
        self.username.setClearButtonEnabled(True)
        fform.addRow("User", self.username)
        self.model_version = QLineEdit()
        self.model_version.setPlaceholderText("any model version")
        self.model_version.setClearButtonEnabled(True)
        fform.addRow("Model version", self.model_version)
        self.source = QLineEdit()
        self.source.setPlaceholderText("any query, e.g. username:alice")
        self.source.setClearButtonEnabled(True)
        self.source.setToolTip("Only images found by this query: username:<name>, model:<id>, tag:<name> or modelVersion:<id>")
        fform.addRow("Found by", self.source)
        self.nsfw_class = QComboBox()
        for value, label in NSFW_CLASSES:
            self.nsfw_class.addItem(label, value)
        fform.addRow("Rating", self.nsfw_class)
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSingleStep(100)
        self.limit.setSpecialValueText("No limit")
        fform.addRow("Limit", self.limit)
        self.filters_box = Collapsible("Filters", filters)
        body.addWidget(self.filters_box)

        # -- performance --
        perf = QWidget()
        pform = _form()
        pform.setContentsMargins(0, 0, 0, 0)
        perf.setLayout(pform)
        self.workers = QSpinBox()
        self.workers.setRange(0, 64)
        self.workers.setSpecialValueText("Automatic (one per core)")
        self.workers.setValue(int(s.get("convert_workers")))
        self.workers.setToolTip("Encoder processes (0: one per CPU core)")
        pform.addRow("Workers", self.workers)
        self.batch = QSpinBox()
        self.batch.setRange(1, 10000)
        self.batch.setValue(int(s.get("convert_batch_size")))
        self.batch.setToolTip("Images claimed from the library at a time (other windows take other batches)")
        pform.addRow("Batch size", self.batch)
        self.perf_box = Collapsible("Performance", perf)
        body.addWidget(self.perf_box)
        body.addWidget(hint("Images another window or the CLI is converting are skipped; nothing is converted twice."))

        # -- files converted earlier --
        body.addSpacing(4)
        body.addWidget(section_title("Converted files"))
        self.refresh_button = QPushButton("Refresh metadata of converted files")
        icons.set_icon(self.refresh_button, "retry")
        self.refresh_button.setToolTip(
            "Rewrite the EXIF and XMP of every WebP converted earlier (the User filter narrows it) from the "
            "library: tags, prompt and settings, readable by exiftool, A1111's PNG Info and ComfyUI. "
            "The pictures are not re-encoded."
        )
        self.refresh_button.clicked.connect(lambda: spawn(self.start_refresh(), name="convert-refresh-metadata"))
        refresh_row = QHBoxLayout()
        refresh_row.addWidget(self.refresh_button)
        refresh_row.addStretch(1)
        body.addLayout(refresh_row)
        body.addWidget(hint("Files converted by older versions get the metadata every tool reads; the pictures stay "
                            "byte for byte the same."))

        self._update_where()
        self._update_quality()
        self.finish_options()

    def _update_where(self, *_args) -> None:
        organized = self.to_folder.isChecked()
        self.dest.setEnabled(organized)
        self.videos.setEnabled(organized)

    def _update_quality(self, *_args) -> None:
        lossy = not self.lossless.isChecked()
        self.quality.setEnabled(lossy)
        self.quality_slider.setEnabled(lossy)

    def search_widget(self) -> QWidget:
        self.filters_box.set_expanded(True)
        return self.username

    def start(self) -> None:
        """In place removes originals (after verification): ask once before such a job."""
        if not self.in_place.isChecked():
            super().start()
            return
        self.confirm_box = confirm(
            self,
            title="Convert in place?",
            text="Each original JPG/PNG is replaced by its WebP.",
            detail="An original is removed only after its WebP was written, re-read and matched by perceptual hash. "
                   "Choose “Organized copy” to keep the originals.",
            action="Convert in place",
            on_yes=lambda: WorkPage.start(self),
        )

    async def describe_library(self, reader) -> str:
        images = await reader.count_images(dl_state="done", type="image")
        videos = await reader.count_images(dl_state="done", type="video")
        converted = await reader.count_images(cv_state="done")
        waiting = await reader.count_images(dl_state="done", type="image", cv_state="never")
        failed = await reader.count_images(dl_state="done", cv_state="failed")
        text = f"{images:,} images and {videos:,} videos on disk · {converted:,} converted · {waiting:,} to convert"
        if failed:
            text += f" · {failed:,} failed"
        stats = await reader.stats()
        if stats.get("converted_src_bytes"):
            saved = stats["converted_src_bytes"] - stats.get("webp_bytes", 0)
            # Tiny or already-compressed originals can grow: say so instead of "saved -14.9 KB".
            text += (f"\nWebP saved {human_bytes(saved)} so far" if saved >= 0
                     else f"\nThe WebP files are {human_bytes(-saved)} larger than their originals so far")
        return text

    def validate(self) -> None:
        from civitgrab_desktop.gui.job_factories import convert_params

        if self.to_folder.isChecked() and not self.dest.path():
            raise ValueError("Choose the folder for the converted files, or convert in place.")
        try:
            convert_params(self.options_dict())
        except ValueError as exc:
            text = str(exc)
            raise ValueError(text[:1].upper() + text[1:] + ".") from None

    def options_dict(self) -> dict[str, Any]:
        source = self.source.text().strip()
        return {
            "quality": self.quality.value(),
            "lossless": self.lossless.isChecked(),
            "workers": self.workers.value() or None,
            "batch_size": self.batch.value(),
            "only_tagged": self.only_tagged.isChecked(),
            "in_place": self.in_place.isChecked(),
            "dest": None if self.in_place.isChecked() else self.dest.path(),
            "videos": self.videos.currentData() if self.to_folder.isChecked() else None,
            "phash_threshold": self.phash.value(),
            "pg13_is_nsfw": self.pg13.isChecked(),
            "username": self.username.text().strip() or None,
            "model_version": self.model_version.text().strip() or None,
            "source": source or None,
            "nsfw_class": self.nsfw_class.currentData(),
            "limit": self.limit.value() or None,
        }

    async def start_refresh(self):
        """Start the metadata refresh of converted files; returns its JobHandle."""
        from civitgrab_desktop.gui.job_factories import build_refresh_job
        from civitgrab_desktop.jobs.refresh_metadata import KIND

        options = {"username": self.username.text().strip() or None, "limit": self.limit.value() or None}
        library = await self.ctx.library()
        job_id = await library.create_job(KIND, options, owner=new_owner(), state="queued")
        job = build_refresh_job(library, options, job_id=job_id)
        title = "Refresh metadata" + (f" · user {options['username']}" if options["username"] else "")
        return self.ctx.jobs.start(job, kind=KIND, title=title, params=options)

    async def start_job(self, options: dict[str, Any] | None = None) -> None:
        from civitgrab_desktop.gui.job_factories import build_convert_job, convert_params

        options = dict(options or self.options_dict())
        params = convert_params(options)
        library = await self.ctx.library()
        job_id = await library.create_job("convert", params.to_dict(), owner=new_owner(), state="queued")
        job = build_convert_job(library, options, job_id=job_id)

        async def retry(handle) -> None:
            await self.start_job(handle.params)

        where = "in place" if options["in_place"] else "organized copy"
        title = f"WebP q{options['quality']}" if not options["lossless"] else "WebP lossless"
        title += f" · {where}"
        if options.get("username"):
            title += f" · user {options['username']}"
        self.ctx.jobs.start(
            job, kind="convert", title=title, params=options, output_dir=options.get("dest"), retry=retry
        )
