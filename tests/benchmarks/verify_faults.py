"""Which check catches which broken download: the structure walk, the full decode, or neither.

    python -m tests.benchmarks.verify_faults --json [--per-format 12]

Each fault is applied to real-size benchmark media (tests/benchmarks/download_media.py) and the
result is given to the checks a download runs: `structure` (core/media/structure.py, while the
bytes stream; videos: the container walk of verify.py), and, for comparison, `full_decode`
(Pillow's verify() + load() in verify.py, no longer run on every file). Faults the transport
layer catches before any of these (a body shorter than its Content-Length, an HTML page with
status 200: Content-Type / magic bytes) are listed with that layer. Figures are the share of
faulted files rejected, and the cost per file of each check.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from civitgrab_desktop.core.media.sniff import JPEG, MP4, PNG, WEBP, detect_type
from civitgrab_desktop.core.media.structure import StructureError, check_structure
from civitgrab_desktop.core.media.verify import verify_media
from tests.benchmarks.common import emit
from tests.benchmarks.download_media import ensure_media
from tests.fake_civitai.faults import corrupt

KINDS = {"png": PNG, "jpeg": JPEG, "webp": WEBP, "mp4": MP4}
HTML = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>" + b" " * 4000 + b"</body></html>"


def _faults(data: bytes, rng: random.Random) -> dict[str, bytes]:
    n = len(data)
    flipped = bytearray(data)
    flipped[n // 2] ^= 0x5A
    return {
        "truncated (random cut, length sent matches)": data[: rng.randrange(n // 10, n - 1)],
        "truncated (last 100 bytes missing)": data[:-100],
        "same-length junk after the magic bytes": data[:16] + rng.randbytes(n - 16),
        "same-length junk after the first quarter (headers intact)": data[: n // 4] + rng.randbytes(n - n // 4),
        "garbage in the middle third (fake 'corrupt')": corrupt(data),
        "one flipped byte in the middle": bytes(flipped),
        "junk appended after the end": data + rng.randbytes(1024),
        "HTML page with status 200": HTML,
    }


def _structure(data: bytes, kind) -> bool:
    """True when the download's cheap checks reject `data`."""
    if detect_type(None, data[:64]) != kind:
        return True  # the magic bytes (sniff) already reject it
    if kind in (PNG, JPEG, WEBP):
        try:
            check_structure(data, kind)
        except StructureError:
            return True
        return False
    return not verify_media(data, kind).ok  # videos: the container walk


def _decode(data: bytes, kind) -> bool:
    return not verify_media(data, kind).ok


def run(per_format: int) -> dict:
    entries = json.loads(ensure_media().read_text(encoding="utf-8"))
    rng = random.Random(16)
    table: dict[str, dict[str, dict[str, float]]] = {}
    cost: dict[str, dict[str, float]] = {}
    for fmt, kind in KINDS.items():
        files = [e for e in entries if e["format"] == fmt][:per_format]
        struct_ms, decode_ms = [], []
        for e in files:
            with open(e["path"], "rb") as fh:
                data = fh.read()
            t0 = time.perf_counter()
            assert not _structure(data, kind), e["path"]
            struct_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            assert not _decode(data, kind), e["path"]
            decode_ms.append((time.perf_counter() - t0) * 1000)
            for fault, bad in _faults(data, rng).items():
                row = table.setdefault(fault, {}).setdefault(fmt, {"structure": 0, "full_decode": 0, "files": 0})
                row["files"] += 1
                row["structure"] += _structure(bad, kind)
                row["full_decode"] += _decode(bad, kind)
        cost[fmt] = {"structure_ms_median": round(statistics.median(struct_ms), 2),
                     "full_decode_ms_median": round(statistics.median(decode_ms), 2)}
    caught = {
        fault: {fmt: f"structure {r['structure']}/{r['files']}, full decode {r['full_decode']}/{r['files']}"
                for fmt, r in by_fmt.items()}
        for fault, by_fmt in table.items()
    }
    caught["body shorter than Content-Length"] = {"any": "transport: the byte count is checked against Content-Length"}
    return {"benchmark": "verify_faults", "files_per_format": per_format, "caught": caught, "cost_per_file": cost}


def markdown(result: dict) -> str:
    fmts = list(KINDS)
    lines = ["| fault | " + " | ".join(fmts) + " |", "|---|" + "---|" * len(fmts)]
    for fault, by_fmt in result["caught"].items():
        if "any" in by_fmt:
            lines.append(f"| {fault} | " + " | ".join([by_fmt["any"]] * len(fmts)) + " |")
        else:
            lines.append(f"| {fault} | " + " | ".join(by_fmt.get(f, "") for f in fmts) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--per-format", type=int, default=12)
    args = ap.parse_args()
    result = run(args.per_format)
    if args.markdown:
        print(markdown(result))
    else:
        emit(result, args.json)


if __name__ == "__main__":
    main()
