"""Shared machinery of the reliability suite: a workspace that runs the real civitgrab-cli in
subprocesses, and the checks every test ends with (nothing partial, nothing lost, nothing twice).

Every check also feeds the report counters (report.REPORT).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from civitgrab_desktop.core.media.sniff import detect_type
from civitgrab_desktop.core.media.verify import verify_media
from tests.fake_civitai import ACCOUNT
from tests.reliability.report import REPORT

REPO = Path(__file__).resolve().parents[2]
MEDIA_EXTS = {".png", ".jpeg", ".jpg", ".webp", ".gif", ".mp4", ".webm", ".mov", ".mkv"}
EXT_OF = {"image/png": ".png", "image/jpeg": ".jpeg", "image/webp": ".webp", "video/mp4": ".mp4", "video/webm": ".webm"}
# What must never reach a user: a Python traceback, or SQLite's lock error.
TRACEBACK = "Traceback (most recent call last)"
LOCKED = re.compile(r"database (table )?is locked", re.IGNORECASE)
SUBCOMMANDS = {"tags", "convert", "export-csv", "migrate", "tagnames", "auth", "update", "queries", "jobs", "resume"}

_live = 0
_live_lock = threading.Lock()


def _started() -> None:
    global _live
    with _live_lock:
        _live += 1
        REPORT.max_concurrent = max(REPORT.max_concurrent, _live)


def _ended() -> None:
    global _live
    with _live_lock:
        _live -= 1


@dataclass
class CliRun:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # what an assertion message shows
        return f"civitgrab-cli {' '.join(self.args)} -> {self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"


def command_of(args: Iterable[str]) -> str:
    for a in args:
        if a in SUBCOMMANDS:
            return a
    return "download"


class Proc:
    """A civitgrab-cli subprocess started with Popen (for kills and concurrent runs)."""

    def __init__(self, args: tuple[str, ...], popen: subprocess.Popen):
        self.args = args
        self.popen = popen
        self._done = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> bool:
        """SIGKILL, the crash nothing can catch. True when the process was still running."""
        alive = self.popen.poll() is None
        if alive:
            self.popen.send_signal(signal.SIGKILL)
        return alive

    def wait(self, timeout: float = 300) -> CliRun:
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
            raise AssertionError(f"civitgrab-cli {' '.join(self.args)} did not finish in {timeout} s\n{out[-3000:]}\n{err[-3000:]}") from None
        finally:
            if not self._done:
                self._done = True
                _ended()
        return CliRun(self.args, self.popen.returncode, out, err)


@dataclass
class RWorkspace:
    """One library (data dir) and one output folder, driven through the real CLI."""

    root: Path
    data_dir: Path
    api_base: str

    @property
    def downloads(self) -> Path:
        return self.root / "image_downloads"

    @property
    def library_path(self) -> Path:
        return self.data_dir / "library.sqlite3"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CIVITGRAB_DATA_DIR=str(self.data_dir),
            CIVITGRAB_API_BASE=self.api_base,
            CIVITGRAB_BACKOFF_MAX="0.3",
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        env.pop("CIVITAI_API_KEY", None)
        env.update(extra)
        return env

    def _argv(self, args: tuple[str, ...], user: str | None) -> list[str]:
        argv = [sys.executable, "-m", "civitgrab_desktop.cli", *args]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user_group(user)}", "--clear-groups", *argv]
        return argv

    def cli(self, *args: str, timeout: float = 300, stdin: str | None = None, user: str | None = None,
            cwd: Path | None = None, **env: str) -> CliRun:
        REPORT.processes[command_of(args)] += 1
        _started()
        try:
            proc = subprocess.run(
                self._argv(args, user), cwd=cwd or self.root, env=self.env(**env), input=stdin or "",
                capture_output=True, text=True, timeout=timeout,
            )
        finally:
            _ended()
        return CliRun(tuple(args), proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, **env: str) -> Proc:
        REPORT.processes[command_of(args)] += 1
        _started()
        popen = subprocess.Popen(
            self._argv(args, None), cwd=self.root, env=self.env(**env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        return Proc(tuple(args), popen)

    def log_text(self) -> str:
        if not self.log_dir.is_dir():
            return ""
        return "".join(p.read_text("utf-8", "replace") for p in sorted(self.log_dir.glob("civitgrab.log*")))

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """A read-only query on the library (the CLI processes are the only writers)."""
        conn = sqlite3.connect(f"file:{self.library_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()


def user_group(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def make_workspace(root: Path, api_base: str) -> RWorkspace:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    return RWorkspace(root, data, api_base)


# -- the fake's request log ---------------------------------------------------------------------


def cdn_uuid(path: str) -> str | None:
    parts = path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == ACCOUNT else None


def log_mark() -> float:
    """A point in the fake's request log, for `cdn_fetches(fake, arrived_after=...)`. The log is
    appended when a response ends, so a slow answer to an earlier run can land after a list
    index taken later; the arrival time says which run sent the request."""
    return time.time()


def cdn_fetches(fake, since: int = 0, *, arrived_after: float | None = None) -> Counter:
    """CDN requests per image uuid in the fake's request log (from entry `since` on; with
    `arrived_after`, only the requests that reached the fake after that time)."""
    counts: Counter = Counter()
    for rec in fake.request_log[since:]:
        if arrived_after is not None and rec.time < arrived_after:
            continue
        uuid = cdn_uuid(rec.path)
        if uuid:
            counts[uuid] += 1
    return counts


def tag_fetches(fake, since: int = 0) -> Counter:
    """tRPC tag.getVotableTags calls per image id (batched calls count once per image)."""
    import json

    counts: Counter = Counter()
    for rec in fake.request_log[since:]:
        if not rec.path.startswith("/api/trpc/") or "tag.getVotableTags" not in rec.path:
            continue
        procs = rec.path[len("/api/trpc/"):].split(",")
        raw = dict(rec.query).get("input")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            continue
        inputs = [data.get(str(i), {}) for i in range(len(procs))] if dict(rec.query).get("batch") else [data]
        for proc, inp in zip(procs, inputs, strict=False):
            if proc != "tag.getVotableTags" or not isinstance(inp, dict):
                continue
            payload = inp.get("json", inp)
            if isinstance(payload, dict) and "id" in payload:
                counts[int(payload["id"])] += 1
    return counts


# -- checks -------------------------------------------------------------------------------------


def media_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTS and not p.name.startswith("."))


def image_id_of(path: Path) -> int | None:
    stem = path.name.split(".")[0]
    return int(stem) if stem.isdigit() else None


def assert_clean_output(run: CliRun) -> None:
    """No traceback and no SQLite lock error ever reach the user."""
    assert TRACEBACK not in run.output, f"a traceback reached the user:\n{run}"
    assert not LOCKED.search(run.output), f"'database is locked' reached the user:\n{run}"


def check_files(root: Path, dataset=None, *, allow_part: bool = False, allow_converted: bool = False) -> dict[int, list[Path]]:
    """Every final-named media file under `root` is complete: it verifies (decodes / container
    intact) and, when `dataset` is given, is byte-identical to the service's original (a WebP made
    by the converter only has to verify). No `.part` is left unless `allow_part`.
    Returns the files found per image id."""
    parts = list(root.rglob("*.part")) if root.exists() else []
    if parts and not allow_part:
        REPORT.corrupt += len(parts)
        raise AssertionError(f"partial downloads left behind: {parts[:5]}")
    found: dict[int, list[Path]] = {}
    for path in media_files(root):
        data = path.read_bytes()
        kind = detect_type(None, data[:64])
        REPORT.files_checked += 1
        result = verify_media(data, kind) if kind is not None else None
        if result is None or not result.ok:
            REPORT.corrupt += 1
            raise AssertionError(f"{path} is under its final name but does not verify: {result and result.reason}")
        image_id = image_id_of(path)
        if image_id is not None:
            found.setdefault(image_id, []).append(path)
        if dataset is not None and image_id is not None and dataset.image(image_id) is not None:
            expected, content_type = dataset.media(image_id)
            if allow_converted and path.suffix == ".webp" and data != expected:
                REPORT.files_compared += 1
                problem = converted_webp_problem(data, image_id, expected, content_type)
                if problem:
                    REPORT.corrupt += 1
                    raise AssertionError(f"{path} is not a faithful WebP of the original image {image_id}: {problem}")
            elif path.suffix == EXT_OF.get(content_type):
                REPORT.files_compared += 1
                if data != expected:
                    REPORT.corrupt += 1
                    raise AssertionError(f"{path} differs from the original image {image_id}")
            elif not (allow_converted and path.suffix == ".webp"):
                REPORT.corrupt += 1
                raise AssertionError(f"{path}: image {image_id} is a {content_type}, saved as {path.suffix}")
    return found


# A WebP of another picture is ~32 bits away; re-encoding at quality 90 moves a few bits. The
# hash here is computed independently of the converter's (full-size decode, plain imagehash).
CONVERTED_MAX_DISTANCE = 10


def _plain_phash(im):
    import imagehash
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return imagehash.phash(im.convert("RGB"))


def converted_webp_problem(data: bytes, image_id: int, original: bytes, content_type: str) -> str | None:
    """Why `data` (a WebP under the final name `<image_id>.webp`) is not the converter's faithful
    WebP of `original`, or None when it is: it carries the converter's metadata for this image id, and
    - a WebP original: its picture chunks are the original's, byte for byte (only EXIF added);
    - a JPEG/PNG/GIF original: same oriented size and frame count, and the same picture (pHash)."""
    import io

    from PIL import Image

    from civitgrab_desktop.core.media.embed import webp_image_id
    from civitgrab_desktop.core.media.webp_riff import image_chunks, parse_chunks

    try:
        parse_chunks(data)
        found = webp_image_id(data)
    except Exception as exc:
        return f"it cannot be read as a WebP ({exc})"
    if found is None:
        return "it has no civitgrab metadata (not written by the converter)"
    if found != image_id:
        return f"its metadata describes image {found}"
    try:
        if content_type == "image/webp":
            if image_chunks(parse_chunks(data)) != image_chunks(parse_chunks(original)):
                return "its picture chunks differ from the original WebP's"
            return None
        with Image.open(io.BytesIO(original)) as src, Image.open(io.BytesIO(data)) as out:
            if out.format != "WEBP":
                return f"it is {out.format}"
            src_frames, out_frames = getattr(src, "n_frames", 1), getattr(out, "n_frames", 1)
            if src_frames != out_frames:
                return f"{out_frames} frames, the original has {src_frames}"
            src_hash = _plain_phash(src)
            if out.size != oriented_size(src):
                return f"it is {out.size[0]}x{out.size[1]}, the original {src.size[0]}x{src.size[1]}"
            distance = src_hash - _plain_phash(out)
    except Exception as exc:  # truncated, garbage
        return f"it cannot be decoded ({type(exc).__name__}: {exc})"
    if distance > CONVERTED_MAX_DISTANCE:
        return f"perceptual hash distance {distance} from the original"
    return None


def oriented_size(im) -> tuple[int, int]:
    """The size of `im` once its EXIF orientation is applied."""
    if im.getexif().get(0x0112) in (5, 6, 7, 8):
        return im.size[1], im.size[0]
    return im.size


def check_library(ws: RWorkspace, *, expect_ok: bool = True, killed_convert=None) -> list[tuple]:
    """The library opens and passes SQLite's integrity check; every image recorded as downloaded
    has its file, with the recorded size and sha256 (unless the converter replaced it).

    `killed_convert` (the dataset), right after a convert process was killed: a conversion it
    finished on disk but did not record yet is accepted when the converter's file is complete
    and faithful to the original (see converted_webp_problem), because the next run records it
    without converting again: in place, `<id>.webp` beside an original already removed (or, for
    a WebP original, under the original's own name); a moved video under the output folder.
    Returns the done rows (id, path, sha256, bytes)."""
    rows_ok = ws.sql("PRAGMA integrity_check")
    REPORT.libraries_checked += 1
    assert rows_ok == [("ok",)], f"library integrity check failed: {rows_ok[:5]}"
    done = ws.sql("SELECT id, path, sha256, bytes FROM images WHERE dl_state = 'done'")
    converted = {r[0]: r[1] for r in ws.sql("SELECT image_id, webp_path FROM conversions")} if _has_table(ws, "conversions") else {}
    for image_id, path, sha, size in done:
        REPORT.rows_checked += 1
        p = Path(path) if path else None
        if p is None or not p.is_file():
            webp = converted.get(image_id)
            if webp and Path(webp).is_file():
                continue
            if p is not None and killed_convert is not None and _unrecorded_conversion(ws, killed_convert, image_id, p):
                continue
            REPORT.lost += 1
            raise AssertionError(f"image {image_id} is recorded as downloaded at {path}, but the file is gone")
        if p.suffix == ".webp" and image_id in converted:
            continue
        data = p.read_bytes()
        if (size is not None and len(data) != size) or (sha and hashlib.sha256(data).hexdigest() != sha):
            if killed_convert is not None and p.suffix == ".webp" and _unrecorded_conversion(ws, killed_convert, image_id, p):
                continue
            REPORT.corrupt += 1
            raise AssertionError(f"image {image_id}: {p} does not match the recorded size/sha256")
    return done


def _unrecorded_conversion(ws: RWorkspace, dataset, image_id: int, recorded: Path) -> bool:
    expected, content_type = dataset.media(image_id)
    if content_type.startswith("video/"):
        moved = [q for q in ws.root.rglob(f"{image_id}{recorded.suffix}") if q != recorded]
        return any(q.read_bytes() == expected for q in moved)
    webp = recorded.with_name(f"{image_id}.webp")
    if not webp.is_file():
        return False
    problem = converted_webp_problem(webp.read_bytes(), image_id, expected, content_type)
    if problem:
        REPORT.corrupt += 1
        raise AssertionError(f"image {image_id}: its original is gone and {webp} is not a faithful WebP: {problem}")
    return True


def check_conversions(ws: RWorkspace, dataset, *, phash_threshold: int = 4) -> int:
    """Every conversion the library records is real: its WebP (or placed video) is on disk under
    the recorded path, complete, and a faithful copy of the image's original (see
    converted_webp_problem); the recorded pHash distance is within the threshold; an original
    recorded as removed is gone and the image's path is the WebP. Returns the number checked."""
    rows = ws.sql(
        """SELECT c.image_id, c.webp_path, c.distance, c.original_removed, c.src_phash, c.webp_phash, i.path
           FROM conversions c JOIN images i ON i.id = c.image_id"""
    )
    for image_id, webp_path, distance, removed, src_phash, webp_phash, path in rows:
        REPORT.rows_checked += 1
        webp = Path(webp_path)
        if not webp.is_file():
            REPORT.lost += 1
            raise AssertionError(f"image {image_id}: the recorded conversion {webp} is not on disk")
        data = webp.read_bytes()
        expected, content_type = dataset.media(image_id)
        if content_type.startswith("video/"):
            if data != expected:
                REPORT.corrupt += 1
                raise AssertionError(f"image {image_id}: the placed video {webp} differs from the original")
        else:
            problem = None if data == expected else converted_webp_problem(data, image_id, expected, content_type)
            if problem:
                REPORT.corrupt += 1
                raise AssertionError(f"image {image_id}: {webp} is not a faithful WebP of the original: {problem}")
            if distance is not None and distance > phash_threshold:
                raise AssertionError(f"image {image_id}: recorded pHash distance {distance} > {phash_threshold}")
            if webp_phash is None or src_phash is None:
                raise AssertionError(f"image {image_id}: the conversion lacks a recorded pHash ({src_phash}, {webp_phash})")
        if removed and (path != webp_path):
            raise AssertionError(f"image {image_id}: the original was removed but the library points at {path}")
    return len(rows)


def temp_files(root: Path) -> list[Path]:
    """Temp files the converter or the downloader left (hidden `.<name>.<token>.tmp`)."""
    return sorted(p for p in root.rglob("*.tmp")) if root.exists() else []


def _has_table(ws: RWorkspace, name: str) -> bool:
    return bool(ws.sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def snapshot(root: Path) -> dict[Path, str]:
    """sha256 of every file under `root` (to prove nothing already on disk changed)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_unchanged(before: dict[Path, str], root: Path) -> None:
    for path, digest in before.items():
        REPORT.files_checked += 1
        if not path.is_file():
            REPORT.lost += 1
            raise AssertionError(f"{path} was on disk before and is gone")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            REPORT.corrupt += 1
            raise AssertionError(f"{path} changed")


def wait_for(predicate, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
