"""Tag Scraper: fetch the community tags of downloaded images (the options of `civitgrab-cli tags`)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.gui.panels.work import WorkPage
from civitgrab_desktop.gui.widgets.common import hint, section_title

LOG = logging.getLogger(__name__)

METHODS = [
    ("auto", "Automatic", "The service's tag API; the browser when the API does not answer"),
    ("api", "API only", "Fast: one request per image to the service's tag endpoint"),
    ("browser", "Browser", "Open each image page in headless Chromium (slow; needs Chromium, Chrome or Edge)"),
]


class TagsPage(WorkPage):
    key = "tags"
    title = "Tag Scraper"
    subtitle = "Fetch the community tags (with their vote scores) of the images in your library."
    icon_name = "tag"
    job_kind = "tags"
    job_module = "civitgrab_desktop.jobs.tags"
    feature = "Tag fetching"
    start_label = "Fetch tags"
    start_icon = "tag"
    empty_text = "No tag jobs yet — download some images, then press Fetch tags."

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        s = ctx.settings
        body = self.options.body
        body.addWidget(section_title("Options"))
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(8)

        self.method = QComboBox()
        for value, label, tip in METHODS:
            self.method.addItem(label, value)
            self.method.setItemData(self.method.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        i = self.method.findData(s.get("tag_method"))
        self.method.setCurrentIndex(max(0, i))
        self.method.setToolTip("How tags are fetched")
        form.addRow("Method", self.method)

        self.workers = QSpinBox()
        self.workers.setRange(1, 32)
        self.workers.setValue(int(s.get("tag_workers")))
        self.workers.setToolTip("Images fetched at the same time (1-32)")
        form.addRow("Workers", self.workers)

        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSingleStep(100)
        self.limit.setSpecialValueText("All due images")
        self.limit.setToolTip("At most this many images (0: all that need tags)")
        form.addRow("Limit", self.limit)

        age_row = QHBoxLayout()
        self.use_max_age = QCheckBox("Refresh tags older than")
        self.max_age = QSpinBox()
        self.max_age.setRange(1, 3650)
        self.max_age.setValue(30)
        self.max_age.setSuffix(" days")
        self.max_age.setEnabled(False)
        self.use_max_age.toggled.connect(self.max_age.setEnabled)
        age_row.addWidget(self.use_max_age)
        age_row.addWidget(self.max_age)
        age_row.addStretch(1)
        form.addRow("Max age", age_row)
        body.addLayout(form)

        self.retag = QCheckBox("Fetch again for images whose tags are known (retag)")
        self.retag.setToolTip("Normally only images without tags (or whose fetch failed) are done")
        body.addWidget(self.retag)
        body.addWidget(hint("Images another window or the CLI is tagging are skipped; nothing is fetched twice."))
        self.finish_options()

    def search_widget(self) -> QWidget:
        return self.method

    async def describe_library(self, reader) -> str:
        downloaded = await reader.count_images(dl_state="done")
        tagged = await reader.count_images(dl_state="done", tag_state="done")
        never = await reader.count_images(dl_state="done", tag_state="never")
        failed = await reader.count_images(dl_state="done", tag_state="failed")
        text = f"{downloaded:,} files on disk · {tagged:,} tagged · {never:,} without tags"
        if failed:
            text += f" · {failed:,} failed (tried again)"
        return text

    def options_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.currentData(),
            "workers": self.workers.value(),
            "limit": self.limit.value() or None,
            "retag": self.retag.isChecked(),
            "max_age_days": self.max_age.value() if self.use_max_age.isChecked() else None,
            "browser_path": self.ctx.settings.get("browser_path") or None,
        }

    async def start_job(self, options: dict[str, Any] | None = None) -> None:
        from civitgrab_desktop.gui.job_factories import build_tags_job, tags_params

        options = dict(options or self.options_dict())
        library = await self.ctx.library()
        params = tags_params(options).to_dict()
        job_id = await library.create_job("tags", params, owner=new_owner(), state="queued")
        client = self.ctx.new_client(concurrency=options["workers"])
        job = build_tags_job(library, client, options, job_id=job_id)

        async def cleanup() -> None:
            await client.close()

        async def retry(handle) -> None:
            await self.start_job(handle.params)

        title = {"auto": "Tags · automatic", "api": "Tags · API", "browser": "Tags · browser"}.get(
            options["method"], f"Tags · {options['method']}"
        )
        if options["limit"]:
            title += f" · up to {options['limit']:,} images"
        self.ctx.jobs.start(job, kind="tags", title=title, params=options, retry=retry, cleanup=cleanup)
