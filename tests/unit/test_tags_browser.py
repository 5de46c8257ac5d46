"""The browser tag method's pure parts: reading tag links, the vote bar, page errors, and finding
a system browser on each platform."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from civitgrab_desktop.core.civitai.browser_tags import (
    browser_user_agent,
    error_for_status,
    parse_page_tag,
    parse_page_tags,
    score_from_bar,
    tag_id_from_href,
    with_own_names,
)
from civitgrab_desktop.core.civitai.browsers import BrowserNotFound, find_browser, launch_args
from civitgrab_desktop.core.civitai.client import BadPayloadError, RateLimitedError, ServerError
from civitgrab_desktop.core.civitai.trpc import TrpcRefused


@pytest.mark.parametrize(
    ("href", "tag_id"),
    [
        ("/images?tags=5133&view=feed", 5133),
        ("/videos?tags=7001&view=feed", 7001),
        ("https://civitai.com/images?view=feed&tags=42", 42),
        ("/images?tags=0&view=feed", None),  # a new tag, not saved yet
        ("/images?view=feed", None),
        ("/images?tags=abc", None),
        (None, None),
    ],
)
def test_tag_id_comes_from_the_link(href, tag_id):
    assert tag_id_from_href(href) == tag_id


@pytest.mark.parametrize("score", range(0, 10))
def test_vote_bar_gives_scores_below_ten_exactly(score):
    # VotableTag.tsx: 0.2 + clamp(score, 0, 10) / 10 * 0.8
    width = (0.2 + max(min(score, 10), 0) / 10 * 0.8) * 100
    assert score_from_bar(f"{width}%") == score
    assert score_from_bar(f" {width:.3f}% ") == score


@pytest.mark.parametrize(("bar", "score"), [("100%", 10), ("100.0%", 10), ("20%", 0), ("", 0), (None, 0), ("wide", 0)])
def test_full_floor_or_missing_vote_bar(bar, score):
    assert score_from_bar(bar) == score


def test_page_tag_uses_the_title_score_then_the_bar():
    shown = parse_page_tag({"href": "/images?tags=5133&view=feed", "text": " woman ", "title": "Score: 15",
                            "needsReview": True, "pending": False, "bar": "100%"})
    assert (shown.id, shown.name, shown.score, shown.needs_review, shown.concrete) == (5133, "woman", 15, True, True)
    assert shown.from_page  # a display name: the job looks the tag's own name up by id
    assert shown.type is None and shown.up_votes == 0 and shown.nsfw_level is None  # not on the page
    pending = parse_page_tag({"href": "/images?tags=5203&view=feed", "text": "blue eyes", "title": None,
                              "pending": True, "bar": "52%"})
    assert (pending.score, pending.concrete) == (4, False)
    assert parse_page_tag({"href": "/images?tags=0", "text": "new"}) is None
    assert parse_page_tag({"href": "/images?tags=9", "text": "  "}) is None


def test_page_tags_are_unique_by_id():
    items = [
        {"href": "/images?tags=1", "text": "a", "title": "Score: 3"},
        {"href": "/images?tags=2", "text": "b", "title": "Score: 2"},
        {"href": "/images?tags=1", "text": "a again", "title": "Score: 9"},
        {"href": "/images?tags=0", "text": "new"},
    ]
    assert [(t.id, t.name, t.score) for t in parse_page_tags(items)] == [(1, "a", 3), (2, "b", 2)]


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, TrpcRefused), (403, TrpcRefused), (429, RateLimitedError), (502, ServerError), (500, ServerError),
     (400, BadPayloadError)],
)
def test_failed_page_answers_map_to_the_client_errors(status, kind):
    error = error_for_status(status, "http://x/images/1")
    assert type(error) is kind
    assert f"tag request failed (HTTP {status})" in error.reason


def test_own_names_replace_display_names_by_id():
    page = parse_page_tags([{"href": "/images?tags=5133&view=feed", "text": "woman", "title": "Score: 15"},
                            {"href": "/images?tags=6001&view=feed", "text": "woman", "title": "Score: 8"},
                            {"href": "/images?tags=77&view=feed", "text": "unnamed", "title": "Score: 1"}])
    named = with_own_names(page, {5133: "1girl", 6001: "woman"})
    assert [(t.id, t.name) for t in named] == [(5133, "1girl"), (6001, "woman"), (77, "unnamed")]


def test_user_agent_looks_like_an_ordinary_browser():
    ua = browser_user_agent("156.0.8078.114", "linux")
    assert ua == ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/156.0.0.0 Safari/537.36")
    assert "Headless" not in browser_user_agent("156.0", "win32") and "Windows NT 10.0" in browser_user_agent("1", "win32")
    assert browser_user_agent("140.0", "darwin", engine="firefox").endswith("Gecko/20100101 Firefox/140.0")


# -- finding a browser -------------------------------------------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def no_which(_name: str) -> None:
    return None


def test_override_path_channel_and_command(tmp_path):
    exe = executable(tmp_path / "my chrome" / "chrome")
    assert find_browser(str(exe)).executable_path == str(exe)
    assert find_browser("msedge").launch_kwargs() == {"channel": "msedge"}
    assert find_browser("Chrome").channel == "chrome"
    firefox = find_browser("firefox")
    assert (firefox.engine, firefox.launch_kwargs()) == ("firefox", {"channel": "moz-firefox"})
    fx = executable(tmp_path / "ff" / "firefox")
    assert find_browser(str(fx)).launch_kwargs() == {"channel": "moz-firefox", "executable_path": str(fx)}
    found = find_browser("my-chromium", which=lambda name: "/opt/bin/my-chromium" if name == "my-chromium" else None)
    assert found.executable_path == "/opt/bin/my-chromium"
    with pytest.raises(BrowserNotFound, match="was not found: /nowhere/chrome"):
        find_browser("/nowhere/chrome", which=no_which)


def test_linux_prefers_the_path_then_standard_places():
    found = find_browser(platform="linux", which=lambda name: "/usr/bin/google-chrome" if name == "google-chrome" else None)
    assert found.executable_path == "/usr/bin/google-chrome"
    if Path("/usr/bin/chromium").exists():  # this machine
        assert find_browser(platform="linux").executable_path.endswith("chromium")


def test_windows_install_places(tmp_path):
    local = tmp_path / "Local"
    edge = executable(tmp_path / "PF86" / "Microsoft" / "Edge" / "Application" / "msedge.exe")
    env = {"PROGRAMFILES": str(tmp_path / "PF"), "PROGRAMFILES(X86)": str(tmp_path / "PF86"), "LOCALAPPDATA": str(local)}
    assert find_browser(platform="win32", env=env, which=no_which).executable_path == str(edge)
    chrome = executable(local / "Google" / "Chrome" / "Application" / "chrome.exe")
    assert find_browser(platform="win32", env=env, which=no_which).executable_path == str(chrome)


def test_macos_applications_folders(tmp_path):
    app = executable(tmp_path / "Applications" / "Chromium.app" / "Contents" / "MacOS" / "Chromium")
    found = find_browser(platform="darwin", env={"HOME": str(tmp_path)}, which=no_which)
    if not Path("/Applications/Google Chrome.app").exists():
        assert found.executable_path == str(app)


def test_nothing_found_says_what_to_do(tmp_path):
    with pytest.raises(BrowserNotFound, match="browser_path"):
        find_browser(platform="win32", env={"PROGRAMFILES": str(tmp_path)}, which=no_which)
    bundled = executable(tmp_path / "ms-playwright" / "chrome")
    found = find_browser(platform="win32", env={}, which=no_which, bundled=[str(bundled)])
    assert found.executable_path == str(bundled)


def test_launch_args():
    root_linux = launch_args("linux", 0)
    assert root_linux[0] == "--no-sandbox"
    for flag in ("--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        assert flag in root_linux
    assert "--no-sandbox" not in launch_args("linux", 1000)
    assert "--no-sandbox" not in launch_args("darwin", 0)
    assert "--no-sandbox" not in launch_args("win32", -1)
    if hasattr(os, "geteuid"):
        assert ("--no-sandbox" in launch_args()) == (os.geteuid() == 0 and sys.platform.startswith("linux"))
