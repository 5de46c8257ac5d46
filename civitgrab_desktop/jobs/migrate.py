"""Import of the classic tool's collection (`civitgrab-cli migrate`, File → Import from the classic
tool): its tracking data read by core/library/classic_import.py, each recorded file found on disk,
checked to be an image or video (core/media/sniff.py) and hashed, then written to the library.

The classic files are hostile input: a recorded path may name any file on the disk. Importing only
reads; anything that is not media by its name and first bytes (a key, a document) is left out, so it
is never hashed, listed, or copied into a download folder as "the image". It lives in jobs/ because
it joins the library and the media checks, which core/ keeps apart.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path

from civitgrab_desktop.core.library import classic_import as classic
from civitgrab_desktop.core.library.classic_import import ClassicEntry, FileFacts, ImportReport
from civitgrab_desktop.core.library.store_base import StoreBase
from civitgrab_desktop.core.media import sniff

_MIME_BY_EXT = {
    ".png": "image/png",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}


def import_classic(
    store: StoreBase,
    *,
    json_path: str | Path | None = None,
    sqlite_path: str | Path | None = None,
    base_dir: str | Path | None = None,
) -> ImportReport:
    """Import the classic tool's JSON and/or SQLite tracking data into the library.
    `base_dir` resolves relative paths (default: the folder holding each classic file)."""
    report = ImportReport()
    for source_path, reader in ((json_path, classic.iter_json_entries), (sqlite_path, classic.iter_sqlite_entries)):
        if source_path is None:
            continue
        source_path = Path(source_path)
        if not source_path.exists():
            report.error(f"{source_path}: file not found")
            continue
        locator = FileLocator(Path(base_dir).resolve() if base_dir else source_path.resolve().parent)
        batch: list[ClassicEntry] = []
        for entry in reader(source_path, report):
            batch.append(entry)
            if len(batch) >= classic.BATCH_SIZE:
                _import_batch(store, batch, locator, report)
                batch = []
        if batch:
            _import_batch(store, batch, locator, report)
    return report


def _import_batch(
    store: StoreBase, batch: list[ClassicEntry], locator: FileLocator, report: ImportReport
) -> None:
    done = classic.done_ids(store, batch)
    # Files are found and hashed outside the write transaction (hashing can take a while).
    facts: dict[str, FileFacts | None] = {}
    located: dict[str, str | None] = {}
    planned: dict[str, str | None] = {}
    for entry in batch:
        try:
            found = locator.find(entry.path)
        except (OSError, ValueError):
            found = None
        planned[entry.key] = locator.planned(entry.path)
        if found is not None and not sniff.is_media_file(found):
            report.error(f"{entry.key}: {found} is not an image or video; left out")
            found = None
        located[entry.key] = str(found) if found else None
        if found is not None:
            folder = str(found.parent)
            report.folders[folder] = report.folders.get(folder, 0) + 1
        if found is None:
            report.missing_files += 1
            facts[entry.key] = None
        elif entry.image_id in done:
            facts[entry.key] = FileFacts(str(found), 0, None, None)  # known; no need to hash
        else:
            try:
                facts[entry.key] = _file_facts(found)
            except OSError as exc:
                report.error(f"{entry.key}: cannot read {found}: {exc}")
                report.missing_files += 1
                facts[entry.key] = None
                located[entry.key] = None

    classic.write_batch(store, batch, facts, located, planned, report)


class FileLocator:
    """Finds a classic file: at its recorded path (relative paths are relative to the classic
    tool's folder), or one folder down, where the classic sorter moved files after recording
    them (`<model>/`, `invalid_metadata/`, `no_metadata/`, `videos/`)."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self._moved: dict[Path, dict[str, Path]] = {}

    def planned(self, recorded: str | None) -> str | None:
        """Where the classic tool meant the file to be, as an absolute path (a relative path is
        relative to the classic folder, never to whatever folder a later job runs in)."""
        if not recorded or "\x00" in recorded:
            return None
        path = Path(recorded).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        return os.path.normpath(path)

    def find(self, recorded: str | None) -> Path | None:
        planned = self.planned(recorded)
        if planned is None:
            return None
        path = Path(planned)
        if path.is_file():
            return path.resolve()
        return self._one_level_down(path.parent).get(path.name)

    def _one_level_down(self, folder: Path) -> dict[str, Path]:
        if folder not in self._moved:
            found: dict[str, Path] = {}
            try:
                subdirs = sorted(e.path for e in os.scandir(folder) if e.is_dir())
            except OSError:
                subdirs = []
            for sub in subdirs:
                try:
                    for e in os.scandir(sub):
                        if e.is_file():
                            found.setdefault(e.name, Path(e.path).resolve())
                except OSError:
                    continue
            self._moved[folder] = found
        return self._moved[folder]


def _file_facts(path: Path) -> FileFacts:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    ext = path.suffix.lower()
    mime = _MIME_BY_EXT.get(ext) or mimetypes.guess_type(path.name)[0]
    return FileFacts(str(path), size, digest.hexdigest(), mime)
