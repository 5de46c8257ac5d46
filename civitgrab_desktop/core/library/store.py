"""LibraryStore: every library operation as a synchronous method on one connection.

The operations live in small mixins by topic (listing, browsing, paths, downloads, tagging,
converting, jobs, saved queries); this class only puts them together. Use it directly from one
thread (the CLI, worker processes, tests), or through the asyncio facade `Library`.
"""

from __future__ import annotations

from civitgrab_desktop.core.library.browsing import BrowsingOps
from civitgrab_desktop.core.library.converting import ConvertingOps
from civitgrab_desktop.core.library.deleting import DeletingOps
from civitgrab_desktop.core.library.downloads import DownloadOps
from civitgrab_desktop.core.library.jobs import JobOps
from civitgrab_desktop.core.library.listing import ListingOps
from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.core.library.paths import PathOps
from civitgrab_desktop.core.library.roots_store import RootOps
from civitgrab_desktop.core.library.rows import ImageRow, ImageState, JobRow, SavedQuery, Source, SourceRow
from civitgrab_desktop.core.library.saved_queries import SavedQueryOps
from civitgrab_desktop.core.library.tagging import TaggingOps

__all__ = [
    "READ_METHODS",
    "ImageRow",
    "ImageState",
    "JobRow",
    "LibraryStore",
    "SavedQuery",
    "Source",
    "SourceRow",
    "new_owner",
]


class LibraryStore(
    ListingOps, BrowsingOps, PathOps, DownloadOps, TaggingOps, ConvertingOps, JobOps, SavedQueryOps, DeletingOps,
    RootOps,
):
    """`LibraryStore(path)` opens (creating and migrating) the library; `read_only=True` opens a
    query-only connection. See StoreBase for leases and timeouts."""


# Methods that never write: the only ones a read connection (`Library.reader()`) offers.
READ_METHODS = frozenset(
    {
        "image",
        "list_images",
        "image_ids",
        "count_images",
        "stats",
        "sources_for",
        "unlinked_sources",
        "tags_of",
        "tag_summary_rows",
        "version_ids_of_user",
        "top_tags",
        "conversion_of",
        "get_job",
        "list_jobs",
        "list_queries",
        "get_query",
        "has_fts",
        "browse_ids",
        "browse_rows",
        "distinct_values",
        "library_signature",
        "list_roots",
        "roots",
    }
)
