from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civitgrab_desktop.core.organize.sanitize import (
    PathTooLong,
    fit_filename,
    is_windows_reserved,
    safe_join,
    sanitize_component,
)
from civitgrab_desktop.core.roots import UnsafePathError, ensure_inside

FORBIDDEN = set('<>:"/\\|?*')
# Text with plenty of the characters that matter: separators, dots, spaces, controls, reserved stems.
_pieces = st.one_of(
    st.sampled_from(list('<>:"/\\|?*. \t\n\r\x00\x7f\x85\u200b¹²³$')),
    st.sampled_from(["CON", "nul", "Com1", "lpt9", "aux", "PRN", "conin$", "COM¹", ".txt", ".."]),
    st.characters(codec="utf-8"),
)
hostile_text = st.lists(_pieces, max_size=30).map("".join)


def assert_valid_everywhere(name: str, max_bytes: int) -> None:
    assert name, "empty name"
    assert name not in (".", "..")
    assert not FORBIDDEN & set(name)
    assert all(ord(c) >= 32 and not 127 <= ord(c) < 160 for c in name)
    assert name[-1] not in " .", "Windows drops trailing dots and spaces"
    assert name[0] not in " .", "leading space or hidden-file dot"
    assert not is_windows_reserved(name)
    assert len(name.encode("utf-8")) <= max_bytes
    assert unicodedata.normalize("NFC", name) == name


# --- sanitize_component -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CON", "CON_"),
        ("con", "con_"),
        ("nul.txt", "nul_.txt"),
        ("COM1", "COM1_"),
        ("lpt3.tar.gz", "lpt3_.tar.gz"),
        ("COM¹", "COM¹_"),
        ("lpt³.log", "lpt³_.log"),
        ("CONIN$", "CONIN$_"),
        ("CONSOLE", "CONSOLE"),
        ("COM10", "COM10"),
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j"),
        ("tab\there\nnew\x00line\x7f", "tab_here_new_line_"),
        ("  name. . ", "name"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        (None, "_"),
        ("../../etc/passwd", "_.._etc_passwd"),
        (".hidden", "hidden"),
        ("urn:air:sdxl:checkpoint:civitai:101055@128078", "urn_air_sdxl_checkpoint_civitai_101055@128078"),
    ],
)
def test_sanitize_examples(raw, expected):
    assert sanitize_component(raw) == expected


def test_sanitize_normalizes_to_nfc():
    decomposed = "Cafe\u0301"
    assert sanitize_component(decomposed) == "Café"


def test_sanitize_counts_bytes_and_never_splits_a_code_point():
    name = "😀" * 40  # 4 bytes each
    out = sanitize_component(name, max_bytes=30)
    assert out == "😀" * 7
    assert len(sanitize_component("é" * 100, max_bytes=21).encode()) == 20


def test_sanitize_keeps_extension_when_asked():
    out = sanitize_component("x" * 300 + ".webp", max_bytes=50, keep_ext=True)
    assert out.endswith(".webp") and len(out.encode()) == 50
    assert sanitize_component("x" * 300 + ".webp", max_bytes=50).endswith("x")


def test_sanitize_truncation_does_not_leave_a_trailing_dot():
    assert sanitize_component("a" * 9 + ". tail", max_bytes=10) == "a" * 9


def test_sanitize_fallback_and_limits():
    assert sanitize_component("...", fallback="unknown") == "unknown"
    assert sanitize_component("", fallback="CON") == "CON_"
    with pytest.raises(ValueError):
        sanitize_component("x", max_bytes=4)


@settings(max_examples=400, deadline=None)
@given(hostile_text, st.integers(min_value=8, max_value=255), st.booleans())
def test_sanitize_result_is_valid_on_every_os(raw, max_bytes, keep_ext):
    out = sanitize_component(raw, max_bytes, keep_ext=keep_ext)
    assert_valid_everywhere(out, max_bytes)
    assert sanitize_component(out, max_bytes, keep_ext=keep_ext) == out, "not idempotent"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters='<>:"/\\|?*.'), min_size=1, max_size=200))
def test_sanitize_keep_ext_keeps_the_extension(stem):
    out = sanitize_component(stem + ".png", 60, keep_ext=True)
    if sanitize_component(stem, 60) != "_":
        assert out.endswith(".png")


# --- safe_join -------------------------------------------------------------------------------


def test_safe_join_sanitizes_each_component(tmp_path):
    p = safe_join(tmp_path, "..", "a/b", "CON", "x.txt")
    assert p == tmp_path / "_" / "a_b" / "CON_" / "x.txt"


def test_safe_join_refuses_a_symlink_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        safe_join(root, "link", "file.png")
    assert safe_join(root, "dir", "file.png") == root / "dir" / "file.png"


def test_ensure_inside(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    assert ensure_inside(root, root / "a" / "b.png") == root / "a" / "b.png"
    assert ensure_inside(root, root) == root
    for bad in (root / ".." / "x", tmp_path / "rootx", root / "out" / "x", "/etc/passwd"):
        with pytest.raises(UnsafePathError):
            ensure_inside(root, bad)


def test_safe_join_allows_a_symlinked_root(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert safe_join(tmp_path / "alias", "a") == tmp_path / "alias" / "a"


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_text, min_size=1, max_size=5))
def test_safe_join_never_escapes(tmp_path_factory, components):
    base = tmp_path_factory.getbasetemp() / "safe_join_prop"
    root = base / "root"
    if not root.exists():
        (base / "outside").mkdir(parents=True)
        root.mkdir()
        for name in ("link", "CON_", "_"):
            (root / name).symlink_to(base / "outside", target_is_directory=True)
    try:
        target = safe_join(root, *components)
    except UnsafePathError:
        first = sanitize_component(components[0], keep_ext=len(components) == 1)
        assert (root / first).is_symlink()
        return
    assert os.path.commonpath([target.resolve(), root.resolve()]) == str(root.resolve())
    assert len(target.relative_to(root).parts) == len(components)


# --- fit_filename ----------------------------------------------------------------------------


def test_fit_filename_leaves_short_paths_alone():
    assert fit_filename("/out", "12345.png", 240) == "12345.png"


def test_fit_filename_shortens_the_stem_and_keeps_the_extension():
    directory = "/" + "d" * 200
    out = fit_filename(directory, "x" * 100 + ".jpeg", 240)
    assert out.endswith(".jpeg")
    assert len(directory) + 1 + len(out) == 240


def test_fit_filename_counts_utf16_units():
    directory = "/" + "d" * 220
    out = fit_filename(directory, "😀" * 20 + ".png", 240)
    assert len(out.encode("utf-16-le")) // 2 <= 240 - 222
    assert out.endswith(".png") and "\ud83d" not in out


def test_fit_filename_raises_when_nothing_useful_fits():
    with pytest.raises(PathTooLong):
        fit_filename("/" + "d" * 232, "123456789.png", 240)
