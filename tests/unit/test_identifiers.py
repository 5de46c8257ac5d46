"""One set of rules for the identifiers typed into the CLI and the Browse & Download page."""

from __future__ import annotations

import pytest

from civitgrab_desktop.jobs.identifiers import IdentifierError, normalize_identifiers, split_identifiers


def test_links_numbers_and_repeats_are_normalized():
    values = split_identifiers(" https://civitai.com/user/alice , bob_art,alice,, ")
    assert normalize_identifiers(1, values) == ["alice", "bob_art"]
    assert normalize_identifiers(2, ["0012", "https://civitai.red/models/12"]) == ["12"]
    assert normalize_identifiers(4, ["https://civitai.com/models/12?modelVersionId=5", "5"]) == ["5"]
    assert normalize_identifiers(3, []) == []


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        (1, "bad name!", "not a valid CivitAI username"),
        (1, "../../etc", "not a valid CivitAI username"),
        (2, "12a", "not a numeric model ID"),
        (4, "-5", "not a numeric model version ID"),
        (6, "0", "not a numeric image ID"),
        (3, "x" * 201, "longer than 200"),
    ],
)
def test_bad_identifiers_say_why(mode, value, message):
    with pytest.raises(IdentifierError, match=message):
        normalize_identifiers(mode, [value])


def test_a_link_of_another_mode_names_its_mode():
    with pytest.raises(IdentifierError, match="does not fit username mode") as caught:
        normalize_identifiers(1, ["https://civitai.com/models/12"])
    assert caught.value.link_mode == 2
