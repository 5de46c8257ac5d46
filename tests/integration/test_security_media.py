"""An image over Pillow's decompression-bomb limit (issue 15, finding 5) fails once with a clear
reason: the download is not retried (the same bytes would fail again), the converter sets it aside,
the thumbnailer refuses it."""

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


async def test_a_decompression_bomb_download_fails_once(bomb, tmp_path):
    hits = []

    async def media(request):
        hits.append(request.path)
        return web.Response(body=bomb.read_bytes(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/media/bomb.png", media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with CivitaiClient(base, options=ClientOptions(retries=5, backoff_max=0.01)) as client:
            with pytest.raises(CivitaiError) as caught:
                await fetch_to_part(client, f"{base}/media/bomb.png", tmp_path / "1.part")
    finally:
        await runner.cleanup()
    assert not isinstance(caught.value, RetryableError)
    assert "too large to decode safely" in caught.value.reason
    assert hits == ["/media/bomb.png"]  # once, not six times
    assert not (tmp_path / "1.part").exists()


def test_the_thumbnailer_refuses_a_bomb(bomb, tmp_path):
    with pytest.raises(UnsupportedMedia, match="too large to preview safely"):
        make_thumbnail(bomb, tmp_path / "t.webp", 256)


def test_the_converter_sets_a_bomb_aside(bomb, tmp_path):
    task = ImageTask(image_id=1, src=str(bomb), out_dir=str(tmp_path / "out"), in_place=False,
                     options=EncodeOptions(), info={"id": 1}, tags=[], record={"id": 1},
                     sha256=hashlib.sha256(bomb.read_bytes()).hexdigest(), roots=Roots((str(tmp_path),)))
    result = run_task(task)
    assert result.status == "skipped" and "too large to decode safely" in result.reason
