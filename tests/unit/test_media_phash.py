from __future__ import annotations

import pytest
from PIL import Image

from civitgrab_desktop.core.media.phash import hash_distance, phash_of, verify_conversion
from tests.unit.test_media_samples import photo


def test_hash_is_16_hex_digits_and_stable(tmp_path):
    path = tmp_path / "a.png"
    photo().save(path)
    h = phash_of(path)
    assert len(h) == 16 and int(h, 16) >= 0
    assert phash_of(path) == h == phash_of(photo())


def test_distance():
    assert hash_distance("0000000000000000", "000000000000000f") == 4
    assert hash_distance("ffffffffffffffff", "0000000000000000") == 64
    with pytest.raises(ValueError):
        hash_distance("00", "0000")


def test_different_pictures_are_far_apart():
    assert hash_distance(phash_of(photo(seed=1)), phash_of(photo(seed=2).rotate(90))) > 10


def test_fast_jpeg_path_is_close_to_the_full_decode(tmp_path):
    path = tmp_path / "big.jpeg"
    photo((1600, 1200), seed=4).save(path, quality=92)
    assert hash_distance(phash_of(path, fast=True), phash_of(path, fast=False)) <= 4


def test_hidden_colour_under_transparency_does_not_count():
    a = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    b = Image.new("RGBA", (64, 64), (0, 0, 255, 0))
    for im in (a, b):
        im.paste((0, 0, 0, 255), (10, 10, 40, 50))
    assert phash_of(a) == phash_of(b)


def test_verify_conversion_reports_size_mismatch(tmp_path):
    src, other = tmp_path / "a.png", tmp_path / "b.webp"
    photo((64, 48)).save(src)
    photo((64, 48)).resize((32, 24)).save(other, "WEBP", quality=90)
    check = verify_conversion(src, other)
    assert not check.same_size and check.distance <= 6
    assert check == (check.src_hash, check.webp_hash, check.distance, check.same_size)
