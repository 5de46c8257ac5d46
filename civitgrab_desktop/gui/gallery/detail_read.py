"""What the detail pane shows about one image, read in one call on the library's reader thread:
its row, tags, sources and conversion, its generation info, and what the file itself carries
(core/media/readback.py: the converted WebP when there is one, else the download).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from civitgrab_desktop.core.media.readback import FileFacts, read_file_facts
from civitgrab_desktop.gui.gallery.metadata import GenerationInfo, generation_info


@dataclass
class Detail:
    row: Any  # ImageRow
    tags: list[dict[str, Any]]
    sources: list[Any]  # SourceRow
    conversion: Any  # ConversionRow | None
    info: GenerationInfo
    file: FileFacts | None = None  # what the image file itself carries (None for videos)


def read_detail(store, image_id: int) -> Detail | None:
    """Reader thread: everything the pane shows about one image."""
    row = store.image(image_id)
    if row is None:
        return None
    conversion = store.conversion_of(image_id)
    facts = None
    if not row.is_video:
        webp = conversion.webp_path if conversion is not None and conversion.webp_path else None
        facts = read_file_facts(webp if webp and os.path.isfile(webp) else row.path)
    return Detail(
        row=row,
        tags=store.tags_of(image_id),
        sources=store.sources_for(image_id),
        conversion=conversion,
        info=generation_info(row.meta, prompt=row.prompt),
        file=facts,
    )
