"""Media bytes for the fake CDN: generated with Pillow from the image's seed, cached (bounded).

* Images: a smooth four-corner colour gradient with a few filled shapes on top (visual structure,
  so perceptual hashes are meaningful), plus light noise for bench JPEGs so they weigh ~20-40 KB.
  PNGs carry the A1111 ``parameters`` text chunk built from the image's meta.
* Videos: real H.264 MP4 and VP9 WebM clips committed under ``media/`` (made once with ffmpeg's
  lavfi sources; ffmpeg is not needed at run time). Several video ids share the same clip bytes.
* CDN variants (§6): anything that is not ``original=true`` is a re-encoded JPEG (resized for
  ``width=``/``height=``); ``anim=false`` on a video is a still JPEG made with Pillow.
"""

from __future__ import annotations

import io
import random
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from .dataset import ImageItem, a1111_parameters

MEDIA_DIR = Path(__file__).with_name("media")
CACHE_BYTES = 512 * 1024 * 1024


class _BoundedCache:
    """LRU of bytes with a total size budget; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple, value: bytes) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._data[key] = value
            self._size += len(value)
            while self._size > self.max_bytes and len(self._data) > 1:
                _, dropped = self._data.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


_cache = _BoundedCache(CACHE_BYTES)
_clips: dict[str, bytes] = {}


def clip_bytes(name: str) -> bytes:
    data = _clips.get(name)
    if data is None:
        data = (MEDIA_DIR / name).read_bytes()
        _clips[name] = data
    return data


def render_picture(seed: int, width: int, height: int, noise: bool = False) -> Image.Image:
    """A deterministic RGB picture with gradients and shapes."""
    rng = random.Random(seed)
    corners = Image.new("RGB", (2, 2))
    corners.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(4)])
    img = corners.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 6)):
        x0, x1 = sorted(rng.randrange(width) for _ in range(2))
        y0, y1 = sorted(rng.randrange(height) for _ in range(2))
        x1, y1 = max(x1, x0 + max(2, width // 10)), max(y1, y0 + max(2, height // 10))
        color = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            pts = [(rng.randrange(width), rng.randrange(height)) for _ in range(3)]
            draw.polygon(pts, fill=color)
    if noise:
        # seeded (Pillow's effect_noise uses C rand(), which is not reproducible)
        grain = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
        img = Image.blend(img, grain, 0.15)
    return img


def _encode(img: Image.Image, fmt: str, text: str = "") -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        info = None
        if text:
            info = PngInfo()
            info.add_text("parameters", text.replace("\x00", ""))
        img.save(buf, "PNG", pnginfo=info, compress_level=1)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=80, method=2)
    else:
        img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _media_file_bytes(path: str) -> bytes:
    data = _clips.get(path)
    if data is None:
        data = Path(path).read_bytes()
        _clips[path] = data
    return data


def cached_original(item: ImageItem) -> bytes | None:
    """The original bytes if they need no work (videos, or already generated), else None."""
    if item.media_file:
        return _media_file_bytes(item.media_file)
    if item.media_format in ("mp4", "webm"):
        return clip_bytes(item.clip or f"clip_96.{item.media_format}")
    return _cache.get(("orig", *item.media_key()))


def original_bytes(item: ImageItem) -> bytes:
    """The uploaded bytes in their real format (cached)."""
    if item.media_file:
        return _media_file_bytes(item.media_file)
    if item.media_format in ("mp4", "webm"):
        return clip_bytes(item.clip or f"clip_96.{item.media_format}")
    key = ("orig", *item.media_key())
    data = _cache.get(key)
    if data is None:
        bench = item.username == "bench"
        pic = render_picture(item.visual_seed, item.width, item.height, noise=bench)
        text = a1111_parameters(item) if item.media_format == "png" else ""
        data = _encode(pic, item.media_format, text)
        _cache.put(key, data)
    return data


def variant_bytes(item: ImageItem, width: int | None = None, height: int | None = None, still: bool = False) -> bytes:
    """A re-encoded JPEG of the image (resized down to ``width``/``height``); for videos a still."""
    key = ("jpeg", *item.media_key(), width, height, still)
    data = _cache.get(key)
    if data is not None:
        return data
    if item.media_format in ("mp4", "webm"):
        pic = render_picture(item.visual_seed, item.width, item.height)
    else:
        pic = Image.open(io.BytesIO(original_bytes(item)))
        pic = pic.convert("RGB")
    w, h = pic.size
    if width and width < w:
        pic = pic.resize((width, max(1, round(h * width / w))), Image.Resampling.BILINEAR)
        w, h = pic.size
    if height and height < h:
        pic = pic.resize((max(1, round(w * height / h)), height), Image.Resampling.BILINEAR)
    data = _encode(pic, "jpeg")
    _cache.put(key, data)
    return data


def clear_cache() -> None:
    _cache.clear()
