"""pytest fixtures for the fake CivitAI (registered in ``tests/conftest.py``).

* ``fake_dataset`` (session): the default dataset, built once (media bytes are cached process-wide).
* ``fake_civitai`` (function): a fresh running ``FakeCivitai`` on a fork of that dataset, so faults,
  toggles, latency, the cap and ``publish_images`` / ``delete_images`` never leak between tests.
* ``fake_base_url`` (function): its base URL, ``http://127.0.0.1:<port>``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dataset import Dataset
from .server import FakeCivitai, default_dataset


@pytest.fixture(scope="session")
def fake_dataset() -> Dataset:
    return default_dataset()


@pytest.fixture
def fake_civitai(fake_dataset: Dataset) -> Iterator[FakeCivitai]:
    fake = FakeCivitai(fake_dataset)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_base_url(fake_civitai: FakeCivitai) -> str:
    return fake_civitai.base_url
