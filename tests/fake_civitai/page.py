"""The image page ``/images/<id>``, built the way the real page renders (Mantine v7, @tabler/icons v3).

Sources (civitai/civitai at HEAD, read from the mirror):

* ``src/pages/images/[imageId].tsx``: a non-numeric id is Next's ``notFound`` (HTTP 404, the
  ``src/pages/404.tsx`` page, which renders ``NotFound``). A numeric id always renders the page
  (HTTP 200): the server prefetches ``image.get`` and ``image.getGenerationData`` into
  ``__NEXT_DATA__`` (``props.pageProps.trpcState.json.queries[i].state.data``); a failed ``image.get``
  is simply not dehydrated (``src/server/utils/server-side-helpers.ts``: success-only).
* ``src/components/Image/Detail/ImageDetailProvider.tsx``: without the SSR image the client asks
  ``image.get`` itself, showing ``PageLoader`` (``src/components/PageLoader/PageLoader.tsx``: a
  Mantine ``Loader``); on NOT_FOUND ``ImageDetail2`` renders ``NotFound``
  (``src/components/AppLayout/NotFound.tsx``: ``<h1>404</h1>``, "The page you are looking for
  doesn't exist", a "Go back home" button, ``<title>Page Not Found</title>`` via ``Meta``).
  Queries retry once (``src/utils/trpc.ts`` ``queryRetry``: ``failureCount < 1``) after React
  Query's default 1 s delay.
* ``src/components/Gated/Gated.tsx`` ``useGated``: on a site that can view NSFW (civitai.com,
  civitai.red) a logged-out visitor of a non-PG image gets ``LoginRequiredCard`` ("This content
  requires an account") instead of the image detail; on the SFW (green) site NSFW content gets
  ``MatureContentRedirect`` ("Mature content now lives on civitai.red"). Either way there are no
  tags and no tag request. A Bearer key on the page request is a session
  (``src/server/auth/get-server-auth-session.ts``).
* ``src/components/VotableTags/VotableTags.tsx``: ``trpc.tag.getVotableTags.useQuery({id, type})``
  (no ``take``: the server's default 100). While loading: ``<Center p="xl"><Loader type="bars"/>
  </Center>``. A failed query leaves ``tags = []``: the group renders with only the level badge and
  the add badge (no error element). Then a ``Group`` (gap 4): the ``BrowsingLevelBadge`` (``PG`` …
  ``XXX``), the add badge (``VotableTagAdd.tsx``: ``IconPlus`` + ``<span>Tag</span>``), one
  ``VotableTag`` per displayed tag, and, when ``tags.length > 6``, an ``ActionIcon`` holding
  ``IconChevronDown`` (``IconChevronUp`` once expanded; the choice is kept in
  ``localStorage.showAllTags``). Order: new tags (id 0), then non-public tags, then API order.
  Without ``canViewNsfw`` (the green site) non-public tags are not displayed.
* ``src/components/VotableTags/VotableTag.tsx``: a Mantine ``Badge`` (``--progress-width`` =
  0.2 + clamp(score, 0, 10) / 10 * 0.8), up/down vote buttons (``IconArrowBigUp/Down``),
  ``IconFlag`` if ``needsReview``, ``IconHourglassEmpty`` if not ``concrete``, then the link
  ``<a href="/images?tags=<id>&view=feed" data-activity="tag-click:image" title="Score: N">``
  (``tagFeedHref.ts``: ``/videos`` for videos) whose text is ``getTagDisplayName(name)``
  (``src/libs/tags.ts``). ``title`` is left out while the tag is being voted on
  (``!concrete && lastUpvote + voteDuration > now``).

Class names: Mantine v7 gives every part a static ``mantine-<Component>-<part>`` class; tabler
icons render ``<svg class="tabler-icon tabler-icon-<name>">``. Nothing else (no test ids, no
state attributes, no error element) is on the real page, so nothing else is here. "Now" is the
dataset's clock (``DATASET_NOW_MS``) so that the voting window is deterministic.
"""

from __future__ import annotations

import json
from typing import Any

TAG_RENDER_DELAY_MS = 100
QUERY_RETRY_DELAY_MS = 1000  # React Query's default retryDelay for the first retry


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
.mantine-Group-root{display:flex;flex-wrap:wrap;gap:4px;align-items:center}
.mantine-Badge-root{position:relative;display:inline-flex;align-items:center;padding:2px 8px;
  border-radius:4px;background:#25262b;font-size:12px;overflow:hidden}
.mantine-Badge-root::before{content:"";position:absolute;left:0;top:0;bottom:0;width:var(--progress-width, 0);
  background:rgba(34,139,230,.25);z-index:0}
.mantine-Badge-label{position:relative;z-index:1}
.mantine-Badge-root a{color:inherit;text-decoration:none}
.mantine-UnstyledButton-root,.mantine-ActionIcon-root{background:none;border:0;color:inherit;padding:0;cursor:pointer}
.tabler-icon{width:14px;height:14px}
.mantine-Loader-root{display:inline-block;width:36px;height:16px;background:#228be6}
"""

_ICONS = {
    "plus": '<path d="M12 5l0 14"/><path d="M5 12l14 0"/>',
    "arrow-big-up": '<path d="M9 20v-8h-3.586a1 1 0 0 1 -.707 -1.707l6.586 -6.586a1 1 0 0 1 1.414 0l6.586 6.586a1 1 0 0 1 -.707 1.707h-3.586v8a1 1 0 0 1 -1 1h-4a1 1 0 0 1 -1 -1z"/>',
    "arrow-big-down": '<path d="M15 4v8h3.586a1 1 0 0 1 .707 1.707l-6.586 6.586a1 1 0 0 1 -1.414 0l-6.586 -6.586a1 1 0 0 1 .707 -1.707h3.586v-8a1 1 0 0 1 1 -1h4a1 1 0 0 1 1 1z"/>',
    "flag": '<path d="M5 5a5 5 0 0 1 7 0a5 5 0 0 0 7 0v9a5 5 0 0 1 -7 0a5 5 0 0 0 -7 0v-9z"/><path d="M5 21v-7"/>',
    "hourglass-empty": '<path d="M6 20v-2a6 6 0 1 1 12 0v2a1 1 0 0 1 -1 1h-10a1 1 0 0 1 -1 -1z"/><path d="M6 4v2a6 6 0 1 0 12 0v-2a1 1 0 0 0 -1 -1h-10a1 1 0 0 0 -1 1z"/>',
    "chevron-down": '<path d="M6 9l6 6l6 -6"/>',
    "chevron-up": '<path d="M6 15l6 -6l6 6"/>',
}

_LOADER = '<div class="mantine-Center-root"><span class="mantine-Loader-root"></span></div>'
_PAGE_LOADER = '<div class="absolute inset-0 flex items-center justify-center gap-4"><span class="mantine-Loader-root"></span></div>'
NOT_FOUND_VIEW = (
    '<div class="mantine-Container-root"><div class="mantine-Stack-root">'
    '<h1 class="mantine-Title-root">404</h1>'
    "<p class=\"mantine-Text-root\">The page you are looking for doesn't exist</p>"
    '<a class="mantine-Button-root" href="/">Go back home</a></div></div>'
)
LOGIN_REQUIRED_VIEW = (
    '<div class="absolute inset-0 flex items-center justify-center"><div>'
    '<p class="mantine-Text-root">Log in to<br>continue</p>'
    '<p class="mantine-Text-root">This content requires an account</p>'
    '<p class="mantine-Text-root">Sign in to keep exploring. It only takes a moment, and your account '
    "unlocks more of the site right away.</p></div></div>"
)
MATURE_REDIRECT_VIEW = (
    '<div class="absolute inset-0 flex items-center justify-center"><div>'
    '<p class="mantine-Text-root">This content<br>has a new home</p>'
    '<p class="mantine-Text-root">Mature content now lives on <span class="mantine-Text-root">civitai.red</span></p>'
    '<a class="mantine-Button-root" href="//civitai.red/">Continue on civitai.red</a></div></div>'
)

_JS = r"""
(function () {
  var ICONS = __ICONS__;
  var CFG = __CONFIG__;
  var LEVELS = {0: '?', 1: 'PG', 2: 'PG-13', 4: 'R', 8: 'X', 16: 'XXX', 32: 'Blocked'};
  var DISPLAY = CFG.displayNames;
  var LIMIT = 6;
  var next = JSON.parse(document.getElementById('__NEXT_DATA__').textContent);
  var queries = next.props.pageProps.trpcState ? next.props.pageProps.trpcState.json.queries : [];
  var imageQuery = queries.filter(function (q) { return q.queryKey[0].join('.') === 'image.get'; })[0];
  var main = document.querySelector('main');

  function icon(name, extra) {
    return '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" ' +
      'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" ' +
      'class="tabler-icon tabler-icon-' + name + (extra ? ' ' + extra : '') + '">' + ICONS[name] + '</svg>';
  }
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }
  function displayName(name) { return Object.prototype.hasOwnProperty.call(DISPLAY, name) ? DISPLAY[name] : name; }
  function isPublic(level) { return level === 0 || level === 1; }
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
  // A tRPC query as the site's client makes it, with React Query's single retry.
  async function query(path, input) {
    var url = '/api/trpc/' + path + '?input=' + encodeURIComponent(JSON.stringify({json: input}));
    for (var attempt = 0; ; attempt++) {
      try {
        var res = await fetch(url, {headers: {'content-type': 'application/json', 'x-client': 'web'}});
        if (!res.ok) throw new Error('HTTP ' + res.status);
        var data = (await res.json()).result.data;
        return typeof data === 'string' ? devalueParse(data) : data.json;
      } catch (err) {
        if (attempt >= 1) throw err;
        await sleep(CFG.retryDelay);
      }
    }
  }

  function badge(tag, image) {
    var pct = (0.2 + Math.max(Math.min(tag.score, 10), 0) / 10 * 0.8) * 100;
    var last = tag.lastUpvote ? new Date(tag.lastUpvote).getTime() : null;
    var voting = !tag.concrete && last !== null && last + CFG.voteDuration > CFG.now;
    var title = voting ? '' : ' title="Score: ' + esc(tag.score) + '"';
    var feed = image.type === 'video' ? 'videos' : 'images';
    var html = '<div class="mantine-Badge-root" style="--progress-width: ' + pct + '%">' +
      '<span class="mantine-Badge-label"><div class="mantine-Group-root">';
    if (tag.id) {
      html += '<button type="button" class="mantine-UnstyledButton-root z-10">' + icon('arrow-big-up') + '</button>' +
        '<button type="button" class="mantine-UnstyledButton-root z-10 mr-1">' + icon('arrow-big-down') + '</button>';
    }
    if (tag.needsReview) html += icon('flag', 'mr-0.5');
    if (!tag.concrete) html += icon('hourglass-empty', 'mr-0.5');
    html += '<a class="mantine-Text-root" href="/' + feed + '?tags=' + esc(tag.id) + '&amp;view=feed" ' +
      'data-activity="tag-click:image"' + title + ' style="z-index: 10">' + esc(displayName(tag.name)) + '</a>';
    return html + '</div></span></div>';
  }

  function renderTags(holder, image, tags) {
    var sorted = tags.map(function (t, i) { return [t, i]; }).sort(function (a, b) {
      var an = a[0].id === 0, bn = b[0].id === 0, am = !isPublic(a[0].nsfwLevel), bm = !isPublic(b[0].nsfwLevel);
      if (an !== bn) return an ? -1 : 1;
      if (am !== bm) return am ? -1 : 1;
      return a[1] - b[1];
    }).map(function (p) { return p[0]; });
    if (!CFG.canViewNsfw) sorted = sorted.filter(function (t) { return isPublic(t.nsfwLevel); });
    var group = document.createElement('div');
    group.className = 'mantine-Group-root';
    group.style.gap = '4px';
    holder.replaceWith(group);
    function draw() {
      var showAll = false;
      try { showAll = JSON.parse(window.localStorage.getItem('showAllTags')) === true; } catch (e) {}
      var html = '';
      if (image.nsfwLevel) {
        html += '<div class="mantine-Badge-root cursor-pointer"><span class="mantine-Badge-label">' +
          LEVELS[image.nsfwLevel] + '</span></div>';
      }
      html += '<div class="mantine-Badge-root cursor-pointer px-[5px]"><span class="mantine-Badge-label">' +
        '<div class="mantine-Group-root">' + icon('plus') + '<span>Tag</span></div></span></div>';
      (showAll ? sorted : sorted.slice(0, LIMIT)).forEach(function (t) { html += badge(t, image); });
      if (tags.length > LIMIT) {
        html += '<button type="button" class="mantine-ActionIcon-root">' +
          icon(showAll ? 'chevron-up' : 'chevron-down') + '</button>';
      }
      group.innerHTML = html;
      var chevron = group.querySelector(':scope > .mantine-ActionIcon-root');
      if (chevron) chevron.addEventListener('click', function () {
        try { window.localStorage.setItem('showAllTags', JSON.stringify(!showAll)); } catch (e) {}
        draw();
      });
    }
    draw();
  }

  async function loadTags(image) {
    var holder = main.querySelector('.mantine-Center-root');  // the tags' loader
    var tags;
    try { tags = await query('tag.getVotableTags', {id: image.id, type: 'image'}); }
    catch (err) { tags = []; }
    await sleep(CFG.renderDelay);
    renderTags(holder, image, tags || []);
  }

  async function loadImage() {
    try {
      var image = await query('image.get', {id: CFG.imageId});
      main.innerHTML = '<div class="media"></div>';  // (the fake stops here: the image now exists)
      return image;
    } catch (err) {
      document.title = 'Page Not Found';
      main.innerHTML = CFG.notFound;
      return null;
    }
  }

  function start() {
    if (imageQuery && CFG.gate === 'page') loadTags(imageQuery.state.data);
    else if (!imageQuery) loadImage();
  }
  if (document.readyState === 'complete') start(); else window.addEventListener('load', start);
})();
"""


def _js(config: dict[str, Any]) -> str:
    from .dataset import DISPLAY_NAMES

    config = {**config, "displayNames": DISPLAY_NAMES, "notFound": NOT_FOUND_VIEW,
              "retryDelay": QUERY_RETRY_DELAY_MS, "renderDelay": TAG_RENDER_DELAY_MS}
    return _JS.replace("__ICONS__", json.dumps(_ICONS)).replace("__CONFIG__", _script_json(config))


def gate_state(nsfw_level: int, *, logged_in: bool, can_view_nsfw: bool) -> str:
    """src/components/Gated/Gated.tsx ``useGated`` for a single-level image: page | login | redirect."""
    has_public = bool(nsfw_level & 1)
    has_safe = bool(nsfw_level & 3)
    if not can_view_nsfw and not logged_in and has_safe and not has_public:
        return "login"
    meets = has_safe if logged_in else has_public
    if not can_view_nsfw and not meets:
        return "redirect"
    if not logged_in and not has_public:
        return "login"
    return "page"


def _next_data(image_id: int, queries: list[dict[str, Any]], created_meta: dict[str, Any] | None) -> str:
    trpc_state: dict[str, Any] = {"json": {"mutations": [], "queries": queries}}
    if created_meta:
        trpc_state["meta"] = created_meta
    return _script_json({
        "props": {"pageProps": {"id": image_id, "trpcState": trpc_state}, "__N_SSP": True},
        "page": "/images/[imageId]",
        "query": {"imageId": str(image_id)},
        "buildId": "fake-civitai",
        "isFallback": False,
        "gssp": True,
        "scriptLoader": [],
    })


def _query(name: str, image_id: int, data: Any, now_ms: int) -> dict[str, Any]:
    return {
        "state": {"data": data, "dataUpdateCount": 1, "dataUpdatedAt": now_ms, "error": None,
                  "errorUpdateCount": 0, "errorUpdatedAt": 0, "fetchFailureCount": 0, "fetchMeta": None,
                  "isInvalidated": False, "status": "success", "fetchStatus": "idle"},
        "queryKey": [name.split("."), {"input": {"id": image_id}, "type": "query"}],
        "queryHash": f'[{json.dumps(name.split("."), separators=(",", ":"))},{{"input":{{"id":{image_id}}},"type":"query"}}]',
    }


def _document(title: str, body: str, next_data: str, js: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_CSS}</style></head>
<body><div id="__next"><main>{body}</main></div>
<script id="__NEXT_DATA__" type="application/json">{next_data}</script>
<script>{js}</script>
</body></html>
"""


def render_page(image_data: dict[str, Any], generation: dict[str, Any] | None, media_url: str,
                created_meta: dict[str, Any] | None = None, *, logged_in: bool = False,
                can_view_nsfw: bool = True, now_ms: int, vote_duration_ms: int) -> str:
    """The page of an existing image (``image_data`` is the ``image.get`` json)."""
    image_id = image_data["id"]
    queries = [_query("image.get", image_id, image_data, now_ms),
               _query("image.getGenerationData", image_id, generation, now_ms)]
    gate = gate_state(int(image_data.get("nsfwLevel") or 0), logged_in=logged_in, can_view_nsfw=can_view_nsfw)
    is_video = image_data.get("type") == "video"
    user = image_data.get("user") or {}
    username = str(user.get("username") or "")
    title = f"{'Video' if is_video else 'Image'} posted " + (f"by {username}" if username else "to civitai")
    if gate == "login":
        body = LOGIN_REQUIRED_VIEW
    elif gate == "redirect":
        body = MATURE_REDIRECT_VIEW
    else:
        media = (
            f'<video src="{_esc(media_url)}" muted loop playsinline></video>' if is_video
            else f'<img src="{_esc(media_url)}" alt="" width="{image_data.get("width") or ""}">'
        )
        body = (f'<div class="media">{media}</div>'
                f'<div class="flex flex-col gap-3">{_LOADER}'
                f'<p>Posted by <a href="/user/{_esc(username)}">{_esc(username)}</a></p></div>')
    config = {"imageId": image_id, "gate": gate, "canViewNsfw": can_view_nsfw, "now": now_ms,
              "voteDuration": vote_duration_ms}
    return _document(title, body, _next_data(image_id, queries, created_meta), _js(config))


def render_missing_page(image_id: int, *, now_ms: int) -> str:
    """A numeric id that names no (visible) image: HTTP 200, the client's image.get fails, then
    ``NotFound`` replaces the page loader."""
    config = {"imageId": image_id, "gate": "page", "canViewNsfw": True, "now": now_ms, "voteDuration": 0}
    return _document("Civitai", _PAGE_LOADER, _next_data(image_id, [], None), _js(config))


# Next's notFound (non-numeric id, unknown route): HTTP 404 with src/pages/404.tsx = NotFound.
NOT_FOUND_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page Not Found</title></head>
<body><div id="__next"><main>{NOT_FOUND_VIEW}</main></div></body></html>
"""
