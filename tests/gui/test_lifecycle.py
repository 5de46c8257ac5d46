"""Quitting with jobs running, resuming them next time, rate-limit waits, and the entry point."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fake_civitai.faults import FaultRule
from tests.gui.conftest import close_window, make_window, media_files, part_files, wait_until
from tests.gui.test_download_flow import new_handle, start_download

ROOT = Path(__file__).resolve().parents[2]


async def test_quit_with_a_running_job_then_resume_it(qapp, data_dir, fake_civitai, out_dir):
    fake_civitai.set_latency(0.3)
    first = make_window(data_dir, fake_civitai.base_url)
    first.show()
    await first.started()
    _page, before = start_download(first, "alice", out_dir, workers=2)
    handle = await new_handle(first, before)
    await wait_until(lambda: handle.bridge.last_progress and handle.bridge.last_progress.done >= 1, 60)

    # Quit: the job is stopped, saved as interrupted, the library is closed, nothing half-written
    await close_window(first)
    assert handle.bridge.ended
    assert first.ctx.services.library is None  # closed
    assert part_files(out_dir) == []
    first.deleteLater()

    # Next start: the unfinished download is offered; Resume continues it under the same job id
    fake_civitai.set_latency(0)
    second = make_window(data_dir, fake_civitai.base_url)
    second.show()
    try:
        await second.started()
        page = second.page("download")
        assert page.resume_banner.isVisibleTo(page)
        assert "alice" in page.resume_text.text()
        page.resume_all_button.click()
        resumed = await new_handle(second, 0)
        assert resumed.job_id == handle.job_id
        await wait_until(lambda: resumed.bridge.ended, 120)
        assert resumed.bridge.state == "done", resumed.bridge.summary
        library = await second.ctx.library()
        rows = await library.reader().list_images(username="alice", dl_state="done")
        assert len(rows) == resumed.bridge.last_progress.total
        assert len({p.stem for p in media_files(out_dir)}) >= len(rows)
        job = await library.get_job(handle.job_id)
        assert job.state == "done"
    finally:
        await close_window(second)
        second.deleteLater()


async def test_rate_limit_shows_a_countdown_not_an_error(window, fake_civitai, out_dir):
    fake_civitai.add_fault(FaultRule("429", where="cdn", count=1, retry_after=3))
    page, before = start_download(window, "bob_art", out_dir, workers=1)
    handle = await new_handle(window, before)
    card = page.job_list.card_for(handle)
    await wait_until(lambda: card.chip.text().startswith("Waiting"), 20, what="the rate-limit countdown")
    assert "rate limited" in card.status.text()
    first = card.chip.text()
    await wait_until(lambda: card.chip.text() != first, 5, what="the countdown to tick")
    await wait_until(lambda: handle.bridge.ended, 60)
    assert handle.bridge.state == "done"
    assert handle.bridge.summary["failed"] == 0
    assert card.chip.text() == "Done"
    assert not card.retry_button.isVisibleTo(card)


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


def test_version_needs_no_display():
    out = subprocess.run([sys.executable, "-m", "civitgrab_desktop", "--version"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("civitgrab ")
    assert "QApplication" not in out.stderr


def test_no_display_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "civitgrab_desktop", "--data-dir", str(tmp_path)], cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no display" in out.stderr


def test_selftest_with_data_dir_and_api_base(tmp_path, fake_civitai):
    out = subprocess.run(
        [sys.executable, "-m", "civitgrab_desktop", "--selftest", "--data-dir", str(tmp_path / "d"),
         "--api-base", fake_civitai.base_url],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["library"] == str(tmp_path / "d" / "library.sqlite3")
    assert (tmp_path / "d" / "library.sqlite3").exists()
    log = (tmp_path / "d" / "logs" / "civitgrab.log").read_text()
    assert fake_civitai.base_url in log and "closed cleanly" in log


def test_env_vars_work_like_the_cli(tmp_path, fake_civitai):
    out = subprocess.run(
        [sys.executable, "-m", "civitgrab_desktop", "--selftest"], cwd=ROOT,
        env=_env(CIVITGRAB_DATA_DIR=str(tmp_path / "e"), CIVITGRAB_API_BASE=fake_civitai.base_url),
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "e" / "library.sqlite3").exists()
    assert fake_civitai.base_url in (tmp_path / "e" / "logs" / "civitgrab.log").read_text()


async def test_two_windows_on_one_library_download_nothing_twice(qapp, data_dir, fake_civitai, tmp_path):
    """Two app instances (here: two windows with their own library connections) on one library,
    both downloading the same user: every image is fetched once, no lock error reaches the user."""
    fake_civitai.set_latency(0.05)
    a = make_window(data_dir, fake_civitai.base_url)
    b = make_window(data_dir, fake_civitai.base_url)
    for w in (a, b):
        w.show()
        await w.started()
    try:
        out_a, out_b = tmp_path / "a", tmp_path / "b"
        _pa, before_a = start_download(a, "alice", out_a, workers=3)
        _pb, before_b = start_download(b, "alice", out_b, workers=3)
        ha = await new_handle(a, before_a)
        hb = await new_handle(b, before_b)
        await wait_until(lambda: ha.bridge.ended and hb.bridge.ended, 120)
        assert ha.bridge.state == hb.bridge.state == "done", (ha.bridge.summary, hb.bridge.summary)
        assert ha.bridge.summary["failed"] == hb.bridge.summary["failed"] == 0
        assert ha.bridge.summary["done"] + hb.bridge.summary["done"] == ha.bridge.last_progress.total
        cdn = [r for r in fake_civitai.requests() if r.path.count("/") >= 3 and not r.path.startswith("/api")]
        fetched = [r.path.split("/")[2] for r in cdn]
        assert len(fetched) == len(set(fetched)), "an image was downloaded twice"
        text = "\n".join(t for h in (ha, hb) for _lvl, t in h.bridge.messages)
        assert "database is locked" not in text
        assert len(media_files(out_a)) >= 20 and len(media_files(out_b)) >= 20
    finally:
        for w in (a, b):
            await close_window(w)
            w.deleteLater()
    await asyncio.sleep(0)


async def test_the_app_and_the_cli_share_one_library(qapp, data_dir, fake_civitai, tmp_path):
    """Another process (civitgrab-cli) downloads the same user into the same library while the
    window does: nothing is downloaded twice and neither side reports a lock error."""
    fake_civitai.set_latency(0.05)
    w = make_window(data_dir, fake_civitai.base_url)
    w.show()
    await w.started()
    cli_out = tmp_path / "cli"
    try:
        _page, before = start_download(w, "alice", tmp_path / "gui", workers=3)
        proc = subprocess.Popen(
            [sys.executable, "-m", "civitgrab_desktop.cli.main", "--mode", "1", "--username", "alice",
             "--output_dir", str(cli_out), "--data-dir", str(data_dir), "--api-base", fake_civitai.base_url],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        handle = await new_handle(w, before)
        await wait_until(lambda: proc.poll() is not None and handle.bridge.ended, 120)
        output = proc.stdout.read()
        assert proc.returncode == 0, output
        assert handle.bridge.state == "done", handle.bridge.summary
        assert "locked" not in output.lower()
        cdn = [r for r in fake_civitai.requests() if r.path.count("/") >= 3 and not r.path.startswith("/api")]
        fetched = [r.path.split("/")[2] for r in cdn]
        assert len(fetched) == len(set(fetched)), "an image was downloaded twice"
        library = await w.ctx.library()
        rows = await library.reader().list_images(username="alice", dl_state="done")
        assert len(rows) == handle.bridge.last_progress.total
        assert len(media_files(cli_out)) >= len(rows)  # the CLI's folder got links/copies
    finally:
        await close_window(w)
        w.deleteLater()


async def test_closing_the_window_asks_then_stops_jobs_safely(qapp, data_dir, fake_civitai, out_dir):
    fake_civitai.set_latency(0.3)
    w = make_window(data_dir, fake_civitai.base_url)
    w.show()
    await w.started()
    closed = asyncio.Event()
    w.closed.connect(closed.set)
    _page, before = start_download(w, "alice", out_dir, workers=2)
    handle = await new_handle(w, before)
    await wait_until(lambda: handle.bridge.last_progress and handle.bridge.last_progress.done >= 1, 60)

    w.close()  # a job runs: the window asks first and stays open
    await wait_until(lambda: getattr(w, "_quit_box", None) is not None and w._quit_box.isVisible(), 5, what="the question")
    assert w.isVisible()
    assert "A job is running" in w._quit_box.text()
    next(b for b in w._quit_box.buttons() if b.text() == "Quit").click()
    await asyncio.wait_for(closed.wait(), 60)
    assert not w.isVisible()
    assert handle.bridge.ended and handle.bridge.state == "stopped"
    assert w.ctx.services.library is None
    assert part_files(out_dir) == []
    w.deleteLater()
