"""What a WebP embeds about its image from the library: the record's fields and its CivitAI page.

The convert, tags and refresh-metadata jobs hand this to core/media/embed.py's build_metadata. It
lives in jobs/ because the page URL is CivitAI's (core/civitai/urls.py) and core/media knows
nothing of CivitAI.
"""

from __future__ import annotations

from typing import Any

from civitgrab_desktop.core.civitai.hosts import DEFAULT_SITE
from civitgrab_desktop.core.civitai.urls import image_page_url
from civitgrab_desktop.core.media.exif import exif_info_from_record


def record_info(record: Any, *, model_name: str | None = None) -> dict[str, Any]:
    """build_metadata's `info` for an ImageRow/ImageRecord: the record fields plus its page URL."""
    info = exif_info_from_record(record, model_name=model_name)
    info["meta"].pop("parameters", None)  # only ever the source's: passed separately
    info["pageUrl"] = image_page_url(DEFAULT_SITE, record.id)
    return info
