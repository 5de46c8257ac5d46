"""fake_civitai: a local, deterministic replica of CivitAI for tests and benchmarks.

It serves, over real HTTP on 127.0.0.1 (aiohttp in a background thread), what the real site's
source does (``civitai/civitai``; ``docs/CIVITAI.md`` lists the facts and their files): the REST API
(``/api/v1/images``, ``/models``, ``/models/<id>``, ``/model-versions/<id>``, ``/tags``, ``/me``),
the media CDN (``/<ACCOUNT>/<uuid>/...``), the tRPC tag endpoint (``/api/trpc/tag.getVotableTags``,
plus ``image.get``), and the HTML image page (``/images/<id>``, built like the real one: see
``page.py``). Faults, latency, an item cap, keys and era toggles are switchable at run time.

Quick start::

    from tests.fake_civitai import FakeCivitai, FaultRule

    with FakeCivitai() as fake:                       # default dataset, built once per process
        url = fake.base_url + "/api/v1/images?username=alice&nsfw=X&limit=200"
        fake.add_fault(FaultRule("429", where="cdn", count=2))
        fake.configure(url_era="width", not_found_style="500")
        fake.set_item_cap(250)
        ids = fake.publish_images("alice", 3)         # newest items, visible at once
        fake.requests("/api/v1/images")               # the request log

In tests use the fixtures from ``tests/fake_civitai/pytest_plugin.py``: ``fake_dataset``
(session), ``fake_civitai`` (a fresh running server per test) and ``fake_base_url``.
From another process: ``python -m tests.fake_civitai --port P`` and the ``/__fake__/`` control
endpoints (see ``server.py``). The dataset's named fixtures are listed in ``dataset.py``; the
fault kinds in ``faults.py``; the toggles in ``server.py``; the page in ``page.py``.
"""

from .dataset import (
    Dataset,
    ImageItem,
    Model,
    ModelTag,
    ModelVersion,
    Tag,
    TagVote,
    User,
    build_dataset,
    display_name,
)
from .faults import FAULT_KINDS, FaultRule
from .server import ACCOUNT, DEFAULT_TOGGLES, FakeCivitai, RequestRecord, default_dataset

__all__ = [
    "ACCOUNT",
    "DEFAULT_TOGGLES",
    "FAULT_KINDS",
    "Dataset",
    "FakeCivitai",
    "FaultRule",
    "ImageItem",
    "Model",
    "ModelTag",
    "ModelVersion",
    "RequestRecord",
    "Tag",
    "TagVote",
    "User",
    "build_dataset",
    "default_dataset",
    "display_name",
]
