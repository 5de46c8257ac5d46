"""The image page ``/images/<id>`` (§8).

The server-side data sits in ``<script id="__NEXT_DATA__" type="application/json">`` at
``props.pageProps.trpcState.json.queries[0].state.data`` (the ``image.get`` result). Tags are not
in it: after ``load`` a small script shows a loader (``.mantine-Loader-root[data-type=bars]``),
fetches ``tag.getVotableTags`` from the same origin (the Referer passes the origin gate), waits
``TAG_RENDER_DELAY_MS`` and renders the tag group inside ``[data-testid="votable-tags"]``:

* a browsing-level badge (``PG``, ``PG-13``, ``R``, ``X``, ``XXX``), then a "+ Tag" badge;
* one badge per tag (``.votable-tag``): vote buttons, a flag icon if ``needsReview``, an hourglass
  if not ``concrete``, then ``<a href="/images?tags=<id>&view=feed" data-activity="tag-click:image"
  title="Score: <score>">DISPLAY NAME</a>`` (``/videos?tags=`` for videos; no ``title`` while the
  tag is up for consideration, i.e. not concrete);
* display order: new tags (id 0), then tags whose nsfwLevel is not PG, then API order;
* only 6 tags until the chevron ``<button aria-label="Show all tags">`` (svg class
  ``tabler-icon-chevron-down``) is clicked; it then shows every tag and becomes
  ``tabler-icon-chevron-up`` (``aria-label="Show fewer tags"``). The choice is kept in
  ``localStorage["showAllTags"]``.
* If the tags request fails, ``.tags-error`` is shown instead.
"""

from __future__ import annotations

import json
from typing import Any

TAG_RENDER_DELAY_MS = 100


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element (as Next's htmlescape does)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_CSS = """
body{font-family:sans-serif;background:#1a1b1e;color:#c1c2c5;margin:0}
main{max-width:960px;margin:0 auto;padding:16px}
.media img{max-width:100%;height:auto}
.tags-group{display:flex;flex-wrap:wrap;gap:4px;align-items:center;min-height:24px}
.mantine-Badge-root{position:relative;display:inline-flex;align-items:center;gap:2px;padding:2px 8px;
  border-radius:16px;background:#25262b;font-size:12px;overflow:hidden}
.votable-tag::before{content:"";position:absolute;left:0;top:0;bottom:0;width:var(--progress-width);
  background:rgba(34,139,230,.25);z-index:0}
.votable-tag>*{position:relative;z-index:1}
.votable-tag a{color:inherit;text-decoration:none}
.votable-tag button,.mantine-ActionIcon-root{background:none;border:0;color:inherit;padding:0;cursor:pointer}
.tabler-icon{width:14px;height:14px;stroke:currentColor;fill:none;stroke-width:2}
.mantine-Loader-root{display:inline-flex;gap:2px}
.mantine-Loader-root span{width:3px;height:14px;background:#228be6;animation:b .8s infinite}
@keyframes b{50%{transform:scaleY(.4)}}
"""

_ICONS = {
    "plus": '<path d="M12 5l0 14"/><path d="M5 12l14 0"/>',
    "arrow-big-up": '<path d="M9 20v-8h-3.586a1 1 0 0 1 -.707 -1.707l6.586 -6.586a1 1 0 0 1 1.414 0l6.586 6.586a1 1 0 0 1 -.707 1.707h-3.586v8a1 1 0 0 1 -1 1h-4a1 1 0 0 1 -1 -1z"/>',
    "arrow-big-down": '<path d="M15 4v8h3.586a1 1 0 0 1 .707 1.707l-6.586 6.586a1 1 0 0 1 -1.414 0l-6.586 -6.586a1 1 0 0 1 .707 -1.707h3.586v-8a1 1 0 0 1 1 -1h4a1 1 0 0 1 1 1z"/>',
    "flag": '<path d="M5 5a5 5 0 0 1 7 0a5 5 0 0 0 7 0v9a5 5 0 0 1 -7 0a5 5 0 0 0 -7 0v-9z"/><path d="M5 21v-7"/>',
    "hourglass": '<path d="M6.5 7h11"/><path d="M6 20v-2a6 6 0 1 1 12 0v2a1 1 0 0 1 -1 1h-10a1 1 0 0 1 -1 -1z"/><path d="M6 4v2a6 6 0 1 0 12 0v-2a1 1 0 0 0 -1 -1h-10a1 1 0 0 0 -1 1z"/>',
    "chevron-down": '<path d="M6 9l6 6l6 -6"/>',
    "chevron-up": '<path d="M6 15l6 -6l6 6"/>',
}

_JS = r"""
(function () {
  var ICONS = __ICONS__;
  var DELAY = __DELAY__;
  var LEVELS = {1: 'PG', 2: 'PG-13', 4: 'R', 8: 'X', 16: 'XXX', 32: 'Blocked'};
  var DISPLAY = __DISPLAY__;
  var LIMIT = 6;
  var next = JSON.parse(document.getElementById('__NEXT_DATA__').textContent);
  var image = next.props.pageProps.trpcState.json.queries[0].state.data;
  var group = document.querySelector('[data-testid="votable-tags"]');

  function icon(name) {
    return '<svg xmlns="http://www.w3.org/2000/svg" class="tabler-icon tabler-icon-' + name +
      '" width="14" height="14" viewBox="0 0 24 24">' + ICONS[name] + '</svg>';
  }
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }
  function displayName(name) { return Object.prototype.hasOwnProperty.call(DISPLAY, name) ? DISPLAY[name] : name; }
  function devalueParse(text) {
    var values = JSON.parse(text), cache = {};
    function h(i) {
      if (i < 0) return undefined;
      if (i in cache) return cache[i];
      var v = values[i], out;
      if (Array.isArray(v)) {
        if (typeof v[0] === 'string') { out = v[0] === 'Date' ? new Date(v[1]) : v; }
        else { out = v.map(h); }
      } else if (v !== null && typeof v === 'object') {
        out = {}; Object.keys(v).forEach(function (k) { out[k] = h(v[k]); });
      } else { out = v; }
      cache[i] = out;
      return out;
    }
    return h(0);
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function badge(tag) {
    var pct = (0.2 + Math.min(tag.score, 10) / 10 * 0.8) * 100;
    var feed = image.type === 'video' ? '/videos' : '/images';
    var title = tag.concrete === false ? '' : ' title="Score: ' + esc(tag.score) + '"';
    var html = '<div class="mantine-Badge-root votable-tag" data-tag-id="' + esc(tag.id) +
      '" style="--progress-width: ' + pct.toFixed(0) + '%">' +
      '<button type="button" class="vote-up" aria-label="Vote up">' + icon('arrow-big-up') + '</button>' +
      '<button type="button" class="vote-down" aria-label="Vote down">' + icon('arrow-big-down') + '</button>';
    if (tag.needsReview) html += icon('flag');
    if (tag.concrete === false) html += icon('hourglass');
    html += '<a href="' + feed + '?tags=' + esc(tag.id) + '&amp;view=feed" data-activity="tag-click:image"' +
      title + '>' + esc(displayName(tag.name)) + '</a></div>';
    return html;
  }

  function render(tags) {
    var ordered = tags.filter(function (t) { return t.id === 0; })
      .concat(tags.filter(function (t) { return t.id !== 0 && t.nsfwLevel > 1; }))
      .concat(tags.filter(function (t) { return t.id !== 0 && !(t.nsfwLevel > 1); }));
    var showAll = false;
    try { showAll = window.localStorage.getItem('showAllTags') === 'true'; } catch (e) {}
    function draw() {
      var html = '';
      if (LEVELS[image.nsfwLevel]) {
        html += '<div class="mantine-Badge-root browsing-level-badge">' + LEVELS[image.nsfwLevel] + '</div>';
      }
      html += '<div class="mantine-Badge-root add-tag">' + icon('plus') + '<span>Tag</span></div>';
      var visible = showAll ? ordered : ordered.slice(0, LIMIT);
      visible.forEach(function (t) { html += badge(t); });
      if (ordered.length > LIMIT) {
        html += '<button type="button" class="mantine-ActionIcon-root show-all-tags" aria-expanded="' +
          showAll + '" aria-label="' + (showAll ? 'Show fewer tags' : 'Show all tags') + '">' +
          icon(showAll ? 'chevron-up' : 'chevron-down') + '</button>';
      }
      group.innerHTML = html;
      group.setAttribute('data-state', 'loaded');
      var btn = group.querySelector('.show-all-tags');
      if (btn) btn.addEventListener('click', function () {
        showAll = !showAll;
        try { window.localStorage.setItem('showAllTags', String(showAll)); } catch (e) {}
        draw();
      });
    }
    draw();
  }

  async function load() {
    group.innerHTML = '<div class="mantine-Loader-root" data-type="bars" role="progressbar"><span></span><span></span><span></span></div>';
    group.setAttribute('data-state', 'loading');
    try {
      var input = encodeURIComponent(JSON.stringify({json: {id: image.id, type: 'image'}}));
      var res = await fetch('/api/trpc/tag.getVotableTags?input=' + input,
        {headers: {'content-type': 'application/json', 'x-client': 'web'}});
      if (!res.ok) throw new Error('HTTP ' + res.status);
      var body = await res.json();
      var data = body.result.data;
      var tags = typeof data === 'string' ? devalueParse(data) : data.json;
      await sleep(DELAY);
      render(tags);
    } catch (err) {
      group.innerHTML = '<div class="tags-error">Could not load tags: ' + esc(err.message) + '</div>';
      group.setAttribute('data-state', 'error');
    }
  }
  if (document.readyState === 'complete') load(); else window.addEventListener('load', load);
})();
"""


def render_page(image_data: dict[str, Any], generation: dict[str, Any] | None, media_url: str,
                created_meta: dict[str, Any] | None = None) -> str:
    """The HTML document for an image (``image_data`` is the ``image.get`` json)."""
    image_id = image_data["id"]
    now_ms = 1785542400000
    queries = [
        {
            "state": {
                "data": image_data,
                "dataUpdateCount": 1,
                "dataUpdatedAt": now_ms,
                "error": None,
                "errorUpdateCount": 0,
                "errorUpdatedAt": 0,
                "fetchFailureCount": 0,
                "fetchMeta": None,
                "isInvalidated": False,
                "status": "success",
                "fetchStatus": "idle",
            },
            "queryKey": [["image", "get"], {"input": {"id": image_id}, "type": "query"}],
            "queryHash": f'[["image","get"],{{"input":{{"id":{image_id}}},"type":"query"}}]',
        },
        {
            "state": {"data": generation, "dataUpdateCount": 1, "dataUpdatedAt": now_ms, "error": None,
                      "status": "success", "fetchStatus": "idle"},
            "queryKey": [["image", "getGenerationData"], {"input": {"id": image_id}, "type": "query"}],
            "queryHash": f'[["image","getGenerationData"],{{"input":{{"id":{image_id}}},"type":"query"}}]',
        },
    ]
    trpc_state: dict[str, Any] = {"json": {"mutations": [], "queries": queries}}
    if created_meta:
        trpc_state["meta"] = created_meta
    next_data = {
        "props": {"pageProps": {"id": image_id, "trpcState": trpc_state}, "__N_SSP": True},
        "page": "/images/[imageId]",
        "query": {"imageId": str(image_id)},
        "buildId": "fake-civitai",
        "isFallback": False,
        "gssp": True,
        "scriptLoader": [],
    }
    from .dataset import DISPLAY_NAMES

    js = (
        _JS.replace("__ICONS__", json.dumps(_ICONS))
        .replace("__DELAY__", str(TAG_RENDER_DELAY_MS))
        .replace("__DISPLAY__", json.dumps(DISPLAY_NAMES))
    )
    user = image_data.get("user") or {}
    username = _esc(str(user.get("username") or ""))
    tag = "video" if image_data.get("type") == "video" else "img"
    media = (
        f'<video src="{_esc(media_url)}" muted loop playsinline></video>'
        if tag == "video"
        else f'<img src="{_esc(media_url)}" alt="Image {image_id}" width="{image_data.get("width") or ""}">'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Image posted by {username} | Civitai</title><style>{_CSS}</style></head>
<body><div id="__next"><main>
<div class="media">{media}</div>
<section class="image-detail"><h2>Tags</h2>
<div class="tags-group mantine-Group-root" data-testid="votable-tags" data-state="idle"></div>
</section>
<p class="uploader">Posted by <a href="/user/{username}">{username}</a></p>
</main></div>
<script id="__NEXT_DATA__" type="application/json">{_script_json(next_data)}</script>
<script>{js}</script>
</body></html>
"""


NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>404: This page could not be found | Civitai</title></head>
<body><div id="__next"><main><h1>404</h1><h2>This page could not be found.</h2></main></div></body></html>
"""
