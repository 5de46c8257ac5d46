"""What a user typed as the identifiers of a download: split, checked and normalized the same way
for `civitgrab-cli` and for the Browse & Download page. Pasted CivitAI links are understood."""

from __future__ import annotations

from civitgrab_desktop.core.civitai.rest import valid_username
from civitgrab_desktop.core.civitai.urls import parse_pasted
from civitgrab_desktop.core.model import DownloadMode

# what one identifier of each mode is called in messages
IDENTIFIER_NAMES = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model ID",
    DownloadMode.TAG: "tag",
    DownloadMode.MODEL_VERSION: "model version ID",
    DownloadMode.POST: "post ID",
    DownloadMode.IMAGE: "image ID",
}
NUMERIC_MODES = (DownloadMode.MODEL, DownloadMode.MODEL_VERSION, DownloadMode.POST, DownloadMode.IMAGE)
MAX_TAG_LENGTH = 200


class IdentifierError(ValueError):
    """An identifier that cannot be used in the mode. `link_mode` is the mode a pasted link
    belongs to, when that is the problem (so the CLI can say which flag to use)."""

    def __init__(self, message: str, *, link_mode: DownloadMode | None = None):
        super().__init__(message)
        self.link_mode = link_mode


def split_identifiers(text: str | None) -> list[str]:
    """The comma-separated parts of `text`, trimmed, empty parts dropped."""
    if not text:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def normalize_identifiers(mode: DownloadMode, values: list[str]) -> list[str]:
    """Each value checked for `mode` (links replaced by the identifier they carry, numbers
    without leading zeros), repeats dropped, order kept. May return an empty list."""
    result: list[str] = []
    name = IDENTIFIER_NAMES[mode]
    for value in values:
        pasted = parse_pasted(value)
        if pasted is not None:
            if pasted.mode != mode:
                raise IdentifierError(
                    f"{value} is a {pasted.kind} link, which does not fit {name} mode", link_mode=pasted.mode
                )
            value = pasted.identifier
        if mode == DownloadMode.USERNAME and not valid_username(value):
            raise IdentifierError(f"“{value}” is not a valid CivitAI username (letters, digits and underscores only)")
        if mode in NUMERIC_MODES:
            if not value.isdigit() or int(value) <= 0:
                raise IdentifierError(f"“{value}” is not a numeric {name}")
            value = str(int(value))
        if mode == DownloadMode.TAG and len(value) > MAX_TAG_LENGTH:
            raise IdentifierError(f"a tag longer than {MAX_TAG_LENGTH} characters cannot exist")
        if value not in result:
            result.append(value)
    return result
