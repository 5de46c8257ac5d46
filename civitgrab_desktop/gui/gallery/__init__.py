"""The gallery: a lazily paged model over the library, a thumbnail pipeline (disk + memory
cache, worker threads, video first frames), a painting delegate, hover video previews, the
detail pane, the shared filter bar and the quick-preview overlay."""

from civitgrab_desktop.gui.gallery import pyside_refcount  # noqa: F401  - before any Qt use
