"""A generated library for the gallery benchmark: N images and videos inserted through the library
API (upsert_listed, then the download, tag and conversion state in bulk transactions), whose files
are a handful of real small images and one clip reused by every row.

    build_library(data_dir, media_dir, n=100_000)

Built once per (n, version) and cached under the system temp dir; the benchmark copies nothing,
it opens the cached library read-mostly (thumbnails go to a fresh data dir's cache).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from civitgrab_desktop.core.library.rows import Source
from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.core.model import ImageRecord

VERSION = 3  # bump when the generated data changes
SEED = 7

WORDS = (
    "a red fox in a forest", "mountain lake at dawn", "cyberpunk street market", "steampunk airship",
    "watercolor flowers", "portrait of a knight", "ancient temple ruins", "cozy cabin in the snow",
    "underwater coral reef", "neon city at night", "a lighthouse on a cliff", "retro spaceship",
    "a cat wearing a hat", "golden hour", "volumetric fog", "highly detailed", "masterpiece",
    "best quality", "cinematic", "8k", "soft focus", "dramatic lighting", "long hair", "blue eyes",
    "smile", "desert caravan", "floating islands", "samurai", "robot gardener", "misty valley",
    "autumn leaves", "snow leopard", "crystal cave", "paper lanterns", "storm clouds",
)
NEGATIVE = "(worst quality:1.4), (low quality:1.4), monochrome, blurry, watermark"
SAMPLERS = ("DPM++ 2M Karras", "Euler a", "DDIM", "DPM++ SDE Karras", "UniPC")
BASES = ("SD 1.5", "SDXL 1.0", "Pony", "Flux.1 D")
TAGS = (
    "1girl", "solo", "long hair", "smile", "outdoors", "sky", "blue eyes", "woman", "landscape",
    "animal", "fox", "city", "night", "water", "tree", "flower", "armor", "sword", "cat", "hat",
    "snow", "building", "car", "robot", "spaceship", "temple", "mountain", "lake", "cloud", "sunset",
    "portrait", "anime", "realistic", "fantasy", "sci-fi", "suggestive", "nudity", "dress", "glasses",
)
NSFW_WEIGHTS = ((1, 50), (2, 20), (4, 15), (8, 10), (16, 5))


def _media(media_dir: Path) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """A few real files: (path, mime, bytes) of images, and of videos."""
    from tests.fake_civitai.media import clip_bytes, render_picture

    media_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for k in range(12):
        w, h = [(512, 768), (768, 512), (640, 640), (448, 704)][k % 4]
        fmt, ext, mime = [("JPEG", "jpeg", "image/jpeg"), ("PNG", "png", "image/png"),
                          ("WEBP", "webp", "image/webp")][k % 3]
        path = media_dir / f"sample_{k}.{ext}"
        if not path.exists():
            render_picture(1000 + k, w, h).save(path, fmt, quality=85)
        images.append((str(path), mime, path.stat().st_size))
    videos = []
    for name in ("clip_96.mp4", "clip_64.mp4", "clip_96.webm"):
        path = media_dir / name
        if not path.exists():
            path.write_bytes(clip_bytes(name))
        videos.append((str(path), "video/webm" if name.endswith(".webm") else "video/mp4", path.stat().st_size))
    return images, videos


def _records(n: int, rng: random.Random) -> list[tuple[str, list[ImageRecord]]]:
    users = [f"user_{k:03d}" for k in range(400)]
    versions = [(2000 + k, f"model{k % 60}_v{k % 7}", f"v{k % 7}.0") for k in range(180)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    by_user: dict[str, list[ImageRecord]] = {}
    for k in range(n):
        image_id = 10_000_000 + k * 3 + rng.randint(0, 2)
        user = users[min(len(users) - 1, int(rng.paretovariate(1.2)) - 1) if rng.random() < 0.5 else rng.randrange(len(users))]
        version_id, checkpoint, version_name = versions[rng.randrange(len(versions))]
        video = rng.random() < 0.05
        level = rng.choices([lv for lv, _ in NSFW_WEIGHTS], [w for _, w in NSFW_WEIGHTS])[0]
        created = (start + timedelta(minutes=k * 7 + rng.randint(0, 6))).isoformat(timespec="milliseconds")
        prompt = ", ".join(rng.sample(WORDS, rng.randint(6, 12)))
        meta = {
            "prompt": prompt, "negativePrompt": NEGATIVE, "seed": rng.getrandbits(32),
            "steps": rng.choice((20, 25, 28, 30, 40)), "sampler": rng.choice(SAMPLERS),
            "cfgScale": rng.choice((5, 6, 7, 7.5, 8)), "Size": "512x768", "Model": checkpoint,
            "resources": [{"name": checkpoint, "type": "model", "hash": f"{rng.getrandbits(40):010x}"}],
            "civitaiResources": [{"type": "checkpoint", "modelVersionId": version_id, "modelVersionName": version_name}],
        }
        stats = {"likeCount": rng.randint(0, 200), "heartCount": rng.randint(0, 100), "laughCount": rng.randint(0, 9),
                 "cryCount": rng.randint(0, 9), "commentCount": rng.randint(0, 20)}
        raw = {
            "id": image_id, "url": f"https://image.example/{image_id}/original=true/{image_id}.jpeg",
            "hash": "U8Fh" + f"{rng.getrandbits(96):024x}", "width": 512, "height": 768, "nsfwLevel": level,
            "type": "video" if video else "image", "nsfw": level >= 4, "browsingLevel": level,
            "createdAt": created, "postId": 800000 + k // 4, "stats": stats, "meta": meta, "username": user,
            "baseModel": rng.choice(BASES), "modelVersionIds": [version_id],
        }
        record = ImageRecord(
            id=image_id, url=raw["url"], type=raw["type"], width=512, height=768, nsfw_level=level, username=user,
            post_id=raw["postId"], created_at=created, base_model=raw["baseModel"], model_version_ids=[version_id],
            meta=meta, checkpoint_name=checkpoint, model_version_name=version_name, stats=stats, raw=raw,
        )
        by_user.setdefault(user, []).append(record)
    return list(by_user.items())


def build_library(data_dir: Path, media_dir: Path, n: int = 100_000, *, log=print) -> Path:
    """Create `data_dir/library.sqlite3` with `n` downloaded images (5 % videos), ~70 % tagged,
    ~20 % converted. Returns the library path."""
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    images, videos = _media(media_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "library.sqlite3"
    with LibraryStore(path) as store:
        for user, records in _records(n, rng):
            store.upsert_listed(records, Source("username", user))
        log(f"  {n:,} records listed in {time.perf_counter() - t0:.1f} s")
        rows = store.connection.execute("SELECT id, type FROM images").fetchall()
        now = datetime.now(UTC)
        updates = []
        for k, (image_id, kind) in enumerate(rows):
            file, mime, size = (videos if kind == "video" else images)[k % (3 if kind == "video" else 12)]
            at = (now - timedelta(seconds=len(rows) - k)).isoformat(timespec="milliseconds")
            updates.append((file, mime, size, at, image_id))

        def downloaded(c):
            c.executemany(
                "UPDATE images SET dl_state = 'done', path = ?, mime = ?, bytes = ?, quality = 'original',"
                " downloaded_at = ? WHERE id = ?",
                updates,
            )

        store.run_write(downloaded)
        tag_ids = {name: 50_000 + k for k, name in enumerate(TAGS)}
        votes = []
        tagged = []
        for image_id, kind in rows:
            if kind != "video" and rng.random() < 0.7:
                for name in rng.sample(TAGS, rng.randint(3, 10)):
                    votes.append((image_id, tag_ids[name], rng.randint(1, 20)))
                tagged.append((image_id,))

        def tags(c):
            c.executemany("INSERT INTO tags (id, name, type) VALUES (?, ?, 'Label')", [(v, k) for k, v in tag_ids.items()])
            c.executemany("INSERT INTO image_tags (image_id, tag_id, score, up_votes) VALUES (?, ?, ?, ?)",
                          [(i, t, s, s) for i, t, s in votes])
            c.executemany("UPDATE images SET tag_state = 'done', tags_fetched_at = '2026-01-01T00:00:00.000+00:00',"
                          " tag_method = 'api' WHERE id = ?", tagged)

        store.run_write(tags)
        converted = [(image_id, images[2][0]) for image_id, kind in rows if kind != "video" and rng.random() < 0.2]

        def conversions(c):
            c.executemany(
                "INSERT INTO conversions (image_id, webp_path, quality, converted_at, src_bytes, webp_bytes)"
                " VALUES (?, ?, 90, '2026-01-02T00:00:00.000+00:00', 100000, 40000)", converted)
            c.executemany("UPDATE images SET cv_state = 'done' WHERE id = ?", [(i,) for i, _ in converted])

        store.run_write(conversions)
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log(f"  library of {n:,} images built in {time.perf_counter() - t0:.1f} s "
        f"({path.stat().st_size / 1e6:.0f} MB, {len(votes):,} tag votes, {len(converted):,} conversions)")
    return path


def cached_library(n: int, *, rebuild: bool = False, log=print) -> tuple[Path, Path]:
    """(library path, media dir) of the cached generated library with `n` images."""
    import tempfile

    root = Path(tempfile.gettempdir()) / f"civitgrab-bench-gallery-v{VERSION}-{n}"
    marker = root / "complete.json"
    if rebuild and root.exists():
        shutil.rmtree(root)
    if not marker.exists():
        if root.exists():
            shutil.rmtree(root)
        log(f"building a library of {n:,} images in {root} (cached for the next runs)")
        build_library(root / "data", root / "media", n, log=log)
        marker.write_text(json.dumps({"n": n, "version": VERSION}))
    return root / "data" / "library.sqlite3", root / "media"
