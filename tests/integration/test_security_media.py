"""An image over Pillow's decompression-bomb limit (issue 15, finding 5) is never retried: a PNG
is checked by structure, not decoded, so it is downloaded once; a GIF (still decoded) fails once
with a clear reason; the converter sets a bomb aside and the thumbnailer refuses it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError, ClientOptions, RetryableError
from civitgrab_desktop.core.media.thumbs import UnsupportedMedia, make_thumbnail
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.convert_tasks import EncodeOptions, ImageTask
from civitgrab_desktop.jobs.convert_worker import run_task
from civitgrab_desktop.jobs.fetch import fetch_to_part

SIDE = 14_000  # 196 M pixels: over twice Pillow's MAX_IMAGE_PIXELS, so opening it raises


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (SIDE, SIDE)).save(path, "PNG")  # a few KB on disk
    assert path.stat().st_size < 200_000
    return path


@pytest.fixture(scope="module")
def gif_bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.gif"
    Image.new("P", (SIDE, SIDE)).save(path, "GIF")
    return path


async def _serve_once(body: bytes, content_type: str, name: str, tmp_path: Path):
    """Fetch `body` through fetch_to_part from a one-route local server; (outcome, hits)."""
    hits = []

    async def media(request):
        hits.append(request.path)
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get(f"/media/{name}", media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with CivitaiClient(base, options=ClientOptions(retries=5, backoff_max=0.01)) as client:
            try:
                outcome = await fetch_to_part(client, f"{base}/media/{name}", tmp_path, "1")
            except CivitaiError as exc:
                outcome = exc
    finally:
        await runner.cleanup()
    return outcome, hits


async def test_a_decompression_bomb_png_is_fetched_once_and_never_decoded(bomb, tmp_path):
    """The download checks a PNG by its structure (core/media/structure.py), never by decoding its
    pixels, so a huge picture is a valid file: stored once, byte for byte; every decoder refuses it
    later (the thumbnailer and converter tests below)."""
    outcome, hits = await _serve_once(bomb.read_bytes(), "image/png", "bomb.png", tmp_path)
    assert not isinstance(outcome, Exception), outcome
    assert hits == ["/media/bomb.png"]
    assert outcome.part_path.read_bytes() == bomb.read_bytes()
    assert (outcome.width, outcome.height) == (SIDE, SIDE)


async def test_a_decompression_bomb_gif_download_fails_once(gif_bomb, tmp_path):
    """GIF is still verified by decoding: too large to decode is the same next time, so no retry."""
    outcome, hits = await _serve_once(gif_bomb.read_bytes(), "image/gif", "bomb.gif", tmp_path)
    assert isinstance(outcome, CivitaiError) and not isinstance(outcome, RetryableError), outcome
    assert "too large to decode safely" in outcome.reason
    assert hits == ["/media/bomb.gif"]  # once, not six times
    assert not list(tmp_path.glob("*.part"))


def test_the_thumbnailer_refuses_a_bomb(bomb, tmp_path):
    with pytest.raises(UnsupportedMedia, match="too large to preview safely"):
        make_thumbnail(bomb, tmp_path / "t.webp", 256)


def test_the_converter_sets_a_bomb_aside(bomb, tmp_path):
    task = ImageTask(image_id=1, src=str(bomb), out_dir=str(tmp_path / "out"), in_place=False,
                     options=EncodeOptions(), info={"id": 1}, tags=[], record={"id": 1},
                     sha256=hashlib.sha256(bomb.read_bytes()).hexdigest(), roots=Roots((str(tmp_path),)))
    result = run_task(task)
    assert result.status == "skipped" and "too large to decode safely" in result.reason
