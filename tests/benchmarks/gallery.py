"""The Gallery page over a library of 100,000 items: launch, scrolling, filters, memory.

    python -m tests.benchmarks.gallery --json [--items 100000] [--rebuild] [--theme light]

The library is generated once by tests/benchmarks/gallery_data.py (5 % videos, ~70 % tagged,
~20 % converted; the files are a dozen real pictures and three clips shared by every row) and
cached in the temp folder. Each run gets a fresh data dir that hard-links that library, so the
thumbnail cache starts cold and the run is the app's first start on that library.

The app runs in a child process (offscreen Qt), started like `civitgrab` starts: QApplication,
qasync loop, services, the real MainWindow (1280x800) shown on the Gallery page. Measured:

* launch_to_first_page_s: from spawning the child process (Python start and imports included,
  from bytecode as an installed app has it: the project is compiled beforehand into a cache in
  the temp folder) to the end of the first paint of the grid with the first page of cards
  loaded. Target < 1.5 s.
  The time until every card on that first screen shows its thumbnail (cold cache) is reported
  beside it.
* longest_loop_stall_ms: a Qt precise timer beats every 5 ms on the GUI thread; the largest gap
  between two beats (so at least 5 ms) while scrolling: wheel-speed scrolling down the first
  thousand cards, then the scroll bar dragged from there to the very end over 4 s (every frame
  a screen of cards nobody saw yet: pages and thumbnails to load), then wheel-scrolling back up
  at the end and waiting for the last screen's thumbnails. Target < 50 ms.
* filter latency: from the filter widget's change (the search box measured from Enter, i.e.
  without its 250 ms typing debounce) until the grid has repainted with the new result's first
  page loaded; for a text search, media type, NSFW level, user, model version, tag, tag state,
  converted, date range, a sort order and Reset (back to 100,000). Target < 200 ms each.
* table_sort_ms: the Database page over all 100,000 rows, a click on each column header until
  the table holds the first chunk in the new order (reported, no target).
* peak_rss_mb: the child's peak resident set (ru_maxrss), after all of the above. Target < 600.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import REPO, emit

TARGETS = {"launch_to_first_page_s": 1.5, "longest_loop_stall_ms": 50.0, "filter_ms": 200.0, "peak_rss_mb": 600.0}
HEARTBEAT_MS = 5


# -- the parent: library, fresh data dir, child process ------------------------------------------


def fresh_data_dir(library: Path) -> Path:
    data = Path(tempfile.mkdtemp(prefix="civitgrab-bench-gallery-run-"))
    target = data / "library.sqlite3"
    try:
        os.link(library, target)  # the same file: nothing copied; the run sees the built library
    except OSError:
        shutil.copy2(library, target)
    return data


def run(items: int, rebuild: bool, theme: str, log) -> dict:
    from tests.benchmarks.gallery_data import cached_library

    t0 = time.perf_counter()
    library, _media = cached_library(items, rebuild=rebuild, log=log)
    library_s = time.perf_counter() - t0
    data = fresh_data_dir(library)
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false")
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    runtime = env.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # An installed app starts from bytecode (pip compiles at install, PyInstaller bundles .pyc):
    # compile the project once into a cache outside the repo, even where the shell says
    # PYTHONDONTWRITEBYTECODE (compiling ~100 modules from source would add ~0.3 s to launch).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "civitgrab-bench-pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "civitgrab_desktop", "tests/benchmarks"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    # with a cache prefix Python looks there for every module's bytecode: one import of the app
    # fills it for the libraries too
    subprocess.run([sys.executable, "-c", "import civitgrab_desktop.app, civitgrab_desktop.gui.main_window"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    try:
        spawned = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.gallery", "--child", str(data), "--theme", theme],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,  # a run takes ~30 s
        )
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"the gallery run failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n"
                               f"{proc.stderr[-4000:]}")
        child = json.loads(lines[-1])
        if os.environ.get("CIVITGRAB_BENCH_PROFILE"):
            print(proc.stderr, file=sys.stderr)
    finally:
        shutil.rmtree(data, ignore_errors=True)

    launch_s = child["marks"]["first_page_painted"] - spawned
    thumbs_s = child["marks"]["first_screen_thumbnails"] - spawned
    filters = child["filters_ms"]
    worst_filter = max(filters.values())
    table_sorts = child["table_sort_ms"]
    stall = child["scroll"]["longest_loop_stall_ms"]
    peak_mb = max(peak_kb, child["peak_rss_kb"]) / 1024
    ok = {
        "launch_to_first_page_s": launch_s < TARGETS["launch_to_first_page_s"],
        "longest_loop_stall_ms": stall < TARGETS["longest_loop_stall_ms"],
        "filter_ms": worst_filter < TARGETS["filter_ms"],
        "peak_rss_mb": peak_mb < TARGETS["peak_rss_mb"],
        "rows": child["rows"] == items,
        "reached_the_end": child["scroll"]["reached_end"],
    }
    return {
        "benchmark": "gallery",
        "items": items,
        "rows": child["rows"],
        "library_ready_s": round(library_s, 2),
        "launch_to_first_page_s": round(launch_s, 3),
        "launch_to_first_screen_thumbnails_s": round(thumbs_s, 3),
        "launch_breakdown_s": {k: round(v - spawned, 3) for k, v in child["marks"].items()},
        "longest_loop_stall_ms": stall,
        "scroll": child["scroll"],
        "filters_ms": filters,
        "worst_filter_ms": worst_filter,
        "table_sort_ms": table_sorts,
        "worst_table_sort_ms": max(table_sorts.values()),
        "launch_stall_ms": child["launch_stall_ms"],
        "filter_stall_ms": child["filter_stall_ms"],
        "peak_rss_mb": round(peak_mb, 1),
        "thumbnails": child["thumbnails"],
        "gc_pauses": child["gc"],
        "targets": TARGETS,
        "checks": ok,
        "ok": all(ok.values()),
    }


# -- the child: the app, instrumented --------------------------------------------------------------


class GcPauses:
    """The longest pauses of Python's cyclic garbage collector (a stall the heartbeat also sees)."""

    def __init__(self):
        import gc

        self.started = 0.0
        self.pauses: list[tuple[float, int]] = []
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self.started, info.get("generation", -1)))

    def summary(self) -> dict:
        worst = max(self.pauses, default=(0.0, -1))
        gen2 = [p for p, g in self.pauses if g == 2]
        return {"collections": len(self.pauses), "longest_ms": round(worst[0] * 1000, 1),
                "longest_generation": worst[1], "gen2": len(gen2),
                "gen2_longest_ms": round(max(gen2, default=0.0) * 1000, 1)}


class Heartbeat:
    """A precise Qt timer on the GUI thread; the gaps between its beats are the loop's stalls."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)
        self.last = 0.0
        self.gaps: list[float] = []
        self.worst: list[tuple[float, float]] = []  # (gap, when)
        self.stacks: list[str] = []  # see watch()

    def watch(self) -> None:
        """Diagnostics (with CIVITGRAB_BENCH_PROFILE): a thread that records the GUI thread's
        Python stack whenever a beat is more than 40 ms late."""
        import threading
        import traceback

        main = threading.main_thread().ident

        def run() -> None:
            reported = 0.0
            while True:
                time.sleep(0.005)
                late = time.perf_counter() - self.last
                if late > 0.04 and self.timer.isActive() and reported != self.last:
                    reported = self.last
                    frame = sys._current_frames().get(main)
                    stack = "".join(traceback.format_stack(frame, limit=12)) if frame else "?"
                    self.stacks.append(f"late {late * 1000:.0f} ms:\n{stack}")

        threading.Thread(target=run, daemon=True, name="stall-watch").start()

    def start(self) -> None:
        self.gaps = []
        self.worst = []
        self.last = time.perf_counter()
        self.timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        if now - self.last > 0.03:
            self.worst.append((now - self.last, now))
        self.last = now

    def stop(self) -> dict:
        self.timer.stop()
        self._beat()  # a stall in progress when stopping counts too
        gaps = sorted(self.gaps)
        if not gaps:
            return {"longest_ms": 0.0, "p99_ms": 0.0, "beats": 0}
        return {
            "longest_ms": round(gaps[-1] * 1000, 1),
            "p99_ms": round(gaps[int(len(gaps) * 0.99) - 1 if len(gaps) > 1 else 0] * 1000, 1),
            "over_50ms": sum(1 for g in gaps if g >= 0.05),
            "beats": len(gaps),
            "worst_ms": [round(g * 1000, 1) for g, _when in sorted(self.worst, reverse=True)[:5]],
        }


def child_main(data_dir: str, theme: str) -> int:
    marks: dict[str, float] = {"process_started": time.time()}
    os.environ.setdefault("QT_API", "pyside6")
    # as civitgrab_desktop.app does: the PySide refcount fix before anything imports Qt
    importlib.import_module("civitgrab_desktop.gui.gallery.pyside_refcount")
    import asyncio

    import qasync
    from PySide6.QtCore import QEvent, QObject

    from civitgrab_desktop.app import create_application, freeze_startup_objects
    from civitgrab_desktop.gui.context import AppContext
    from civitgrab_desktop.gui.main_window import MainWindow
    from civitgrab_desktop.gui.theme import ThemeManager
    from civitgrab_desktop.services import Services

    marks["imported"] = time.time()
    app = create_application()
    services = Services.create(data_dir=data_dir, api_base="http://127.0.0.1:9")
    manager = ThemeManager(app)
    manager.apply(theme)
    marks["app_created"] = time.time()

    class PaintWatch(QObject):
        """Counts the grid's paints; `on_paint` runs after a paint (the next loop pass)."""

        def __init__(self):
            super().__init__()
            self.paints = 0
            self.waiters: list = []

        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint:
                self.paints += 1
                if self.waiters:
                    loop = asyncio.get_event_loop()
                    waiters, self.waiters = self.waiters, []
                    for check, future in waiters:
                        # the paint runs right after this filter; call_soon sees it finished
                        loop.call_soon(self._settle, check, future)
            return False

        def _settle(self, check, future) -> None:
            if future.done():
                return
            if check():
                future.set_result(time.time())
            else:
                self.waiters.append((check, future))

        def next_paint(self, check=lambda: True) -> asyncio.Future:
            future = asyncio.get_event_loop().create_future()
            self.waiters.append((check, future))
            return future

    profile_dir = os.environ.get("CIVITGRAB_BENCH_PROFILE")  # cProfile of the GUI thread per phase

    class Phase:
        def __init__(self, name: str):
            self.name = name
            self.profile = None

        def __enter__(self):
            if profile_dir:
                import cProfile

                self.profile = cProfile.Profile()
                self.profile.enable()
            return self

        def __exit__(self, *exc):
            if self.profile is not None:
                self.profile.disable()
                os.makedirs(profile_dir, exist_ok=True)
                self.profile.dump_stats(os.path.join(profile_dir, f"{self.name}.prof"))

    gc_pauses = GcPauses()

    async def main() -> dict:
        result: dict = {"marks": marks}
        heartbeat = Heartbeat()
        if profile_dir:
            heartbeat.watch()
        launch = Phase("launch").__enter__()
        heartbeat.start()
        ctx = AppContext(services, api_base_overridden=True)
        window = MainWindow(ctx, manager)
        window.resize(1280, 800)
        page = window.page("gallery")
        watch = PaintWatch()
        page.view.viewport().installEventFilter(watch)
        first_page = watch.next_paint(lambda: page.model.rowCount() > 0 and page.model.is_page_loaded(0))
        window.show_page("gallery")
        window.show()
        marks["window_shown"] = time.time()
        started = asyncio.ensure_future(window.started())
        marks["first_page_painted"] = await asyncio.wait_for(first_page, 60)
        await started
        freeze_startup_objects()  # as app.main_async does once the window has started
        result["rows"] = page.model.rowCount()

        def screen_done() -> bool:
            first, last = page.view.visible_rows()
            size = page._thumb_px()
            for row in range(first, last + 1):
                item = page.model.item(row)
                if item is None:
                    return False
                rect = page.view.visualRect(page.model.index(row))
                if not rect.intersects(page.view.viewport().rect()):
                    continue
                if page.loader.cached(item.id, size) is None and page.loader.failure(item.id) is None:
                    return False
            return True

        async def settle(timeout: float = 60.0) -> float:
            started_at = time.perf_counter()
            while not screen_done():
                if time.perf_counter() - started_at > timeout:
                    raise RuntimeError("the screen's thumbnails never arrived")
                await asyncio.sleep(0.01)
            return time.perf_counter() - started_at

        await settle()
        marks["first_screen_thumbnails"] = time.time()
        result["launch_stall_ms"] = heartbeat.stop()
        launch.__exit__(None, None, None)

        # -- scrolling ----------------------------------------------------------------------------
        view = page.view
        bar = view.verticalScrollBar()
        stats0 = dict(page.loader.stats)
        pages0 = len(page.model.page_load_times)
        scrolling = Phase("scroll").__enter__()
        heartbeat.start()
        t_scroll = time.perf_counter()
        notch = bar.singleStep() * 3  # one wheel notch (wheelScrollLines = 3)
        per_row = max(1, view.viewport().width() // view.gridSize().width())
        wheel_rows = 1000 // per_row
        notches = (wheel_rows * view.gridSize().height()) // notch
        for _ in range(notches):  # a fast wheel: 40 notches a second
            bar.setValue(bar.value() + notch)
            await asyncio.sleep(0.025)
        wheel_s = time.perf_counter() - t_scroll
        start_value, frames = bar.value(), 240  # the thumb dragged to the end in 4 s, 60 frames a second
        for k in range(1, frames + 1):
            bar.setValue(start_value + (bar.maximum() - start_value) * k // frames)
            await asyncio.sleep(1 / 60)
        for _ in range(40):  # a second of wheel up and down at the end
            bar.setValue(bar.value() - notch if _ < 20 else bar.value() + notch)
            await asyncio.sleep(0.025)
        bar.setValue(bar.maximum())
        settle_s = await settle()
        scroll = heartbeat.stop()
        scrolling.__exit__(None, None, None)
        first, last = view.visible_rows()
        loaded = len(page.model.page_load_times) - pages0
        stats = {k: page.loader.stats.get(k, 0) - stats0.get(k, 0) for k in page.loader.stats}
        page_times = sorted(page.model.page_load_times[-loaded:]) if loaded else [0.0]
        result["scroll"] = {
            "longest_loop_stall_ms": scroll["longest_ms"],
            "p99_gap_ms": scroll["p99_ms"],
            "gaps_over_50ms": scroll["over_50ms"],
            "worst_gaps_ms": scroll["worst_ms"],
            "heartbeats": scroll["beats"],
            "seconds": round(time.perf_counter() - t_scroll, 2),
            "wheel_notches": notches,
            "wheel_s": round(wheel_s, 2),
            "drag_frames": frames,
            "scrolled_px": bar.maximum(),
            "reached_end": last == page.model.rowCount() - 1 and page.model.item(last) is not None,
            "last_screen_thumbnails_s": round(settle_s, 3),
            "pages_loaded": loaded,
            "page_load_ms_max": round(page_times[-1] * 1000, 1),
            "page_load_ms_median": round(page_times[len(page_times) // 2] * 1000, 1),
            "thumbnails_made": stats.get("made", 0) + stats.get("frame", 0),
            "thumbnail_requests_dropped": stats.get("dropped", 0),
        }
        bar.setValue(0)
        await settle()

        # -- filters ------------------------------------------------------------------------------
        fb = page.filter_bar
        filters: dict[str, float] = {}
        counts: dict[str, int] = {}

        refreshed: list[float] = []
        page.model.refreshed.connect(lambda _count: refreshed.append(time.time()))

        async def measure(name: str, change) -> None:
            before = page.pending_refresh
            refreshed.clear()
            # the first paint after the model took the new result with its first page (the page
            # still records the library's signature after that; the user already sees it)
            painted = watch.next_paint(lambda: bool(refreshed) and page.model.is_page_loaded(0))
            t = time.time()
            change()
            if page.pending_refresh is before:
                raise RuntimeError(f"{name}: the change started no refresh")
            count = await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
            if count:
                done = await asyncio.wait_for(painted, 30)
            else:
                painted.cancel()
                done = refreshed[0]
            filters[name] = round((done - t) * 1000, 1)
            counts[name] = count
            await asyncio.sleep(0.2)

        def set_search(text: str):
            fb.search.setText(text)
            fb._emit_now()  # what Enter does (no typing debounce)

        def set_line(edit, text: str):
            edit.setText(text)
            fb._emit_now()

        async def table_sorts() -> dict[str, float]:
            """The database page over every row: a click on each header (descending) until the
            table holds the new order's first chunk."""
            from PySide6.QtCore import Qt

            from civitgrab_desktop.gui.panels.database_model import COLUMNS

            table_page = window.page("database")
            window.show_page("database")
            model = table_page.model
            await asyncio.wait_for(table_page.refresh(), 60)  # the page's first query
            times: dict[str, float] = {}
            for column, spec in enumerate(COLUMNS):
                done = asyncio.get_running_loop().create_future()

                def on_refreshed(_count, done=done):
                    if not done.done():
                        done.set_result(time.time())

                model.refreshed.connect(on_refreshed)
                t = time.time()
                table_page.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
                finished = await asyncio.wait_for(done, 30)
                model.refreshed.disconnect(on_refreshed)
                if model.total != result["rows"]:
                    raise RuntimeError(f"the table holds {model.total} rows, not {result['rows']}")
                times[spec.key] = round((finished - t) * 1000, 1)
                await asyncio.sleep(0.1)
            window.show_page("gallery")
            return times

        filtering = Phase("filters").__enter__()
        heartbeat.start()
        await measure("search_text", lambda: set_search("lighthouse"))
        await measure("search_two_words", lambda: set_search("samurai cinem"))
        await measure("search_rare", lambda: set_search("zzzznotaword"))
        fb.reset()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("media_type_video", lambda: fb.media_type.setCurrentIndex(fb.media_type.findData("video")))
        fb.media_type.setCurrentIndex(0)
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("nsfw_x", lambda: fb.nsfw_actions[8].setChecked(True))
        await measure("nsfw_x_xxx", lambda: fb.nsfw_actions[16].setChecked(True))
        fb._clear_nsfw()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("user", lambda: set_line(fb.username, "user_003"))
        fb.username.clear()
        fb._emit_now()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("model_version", lambda: set_line(fb.model_version, "v3.0"))
        fb.model_version.clear()
        fb._emit_now()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("tag", lambda: set_line(fb.tag, "long hair"))
        await measure("tag_and_search", lambda: set_search("fox"))
        fb.reset()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("tags_fetched", lambda: fb.tag_state.setCurrentIndex(fb.tag_state.findData("done")))
        fb.tag_state.setCurrentIndex(0)
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)
        await measure("converted", lambda: fb.converted.setCurrentIndex(fb.converted.findData(True)))
        fb.converted.setCurrentIndex(0)
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 30)

        def dates():
            from PySide6.QtCore import QDate

            fb.date_from.setDate(QDate(2024, 6, 1))
            fb.use_from.setChecked(True)

        await measure("date_range", dates)
        await measure("reset_to_all", fb.reset)
        await measure("sort_reactions", lambda: page.sort.setCurrentIndex(page.sort.findData("reactions")))
        await measure("sort_newest", lambda: page.sort.setCurrentIndex(page.sort.findData("newest")))
        result["filter_stall_ms"] = heartbeat.stop()
        filtering.__exit__(None, None, None)
        result["filters_ms"] = filters
        result["filter_rows"] = counts
        result["table_sort_ms"] = await table_sorts()
        result["thumbnails"] = {
            "memory_mb": round(page.loader.memory_bytes() / 1e6, 1),
            "memory_budget_mb": round(page.loader.memory_budget / 1e6, 1),
            "disk_mb": round(page.loader.disk_bytes() / 1e6, 1),
            "made_ms_median": round(sorted(page.loader.make_times)[len(page.loader.make_times) // 2] * 1000, 1)
            if page.loader.make_times else None,
            "stats": dict(page.loader.stats),
        }
        result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["gc"] = gc_pauses.summary()
        if profile_dir:
            with open(os.path.join(profile_dir, "stalls.txt"), "w") as fh:
                fh.write("\n".join(heartbeat.stacks))
        task = window.request_quit()
        await asyncio.wait_for(asyncio.shield(task), 60)
        return result

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        result = runner.run(main())
    print(json.dumps(result), flush=True)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rebuild", action="store_true", help="build the cached library again")
    ap.add_argument("--theme", default="light", choices=("light", "dark"))
    ap.add_argument("--child", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(child_main(args.child, args.theme))
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    emit(run(args.items, args.rebuild, args.theme, log), args.json)


if __name__ == "__main__":
    main()
