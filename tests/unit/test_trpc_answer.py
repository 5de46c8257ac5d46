"""Reading the tRPC answer an image page received: single and batch requests, superjson and
devalue, error entries (src/utils/trpc.ts, src/shared/utils/trpc-union-transformer.ts)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from civitgrab_desktop.core.civitai import trpc_answer
from tests.fake_civitai.trpc import devalue_stringify, superjson

TAG = {"score": 9, "upVotes": 0, "downVotes": 0, "automated": True, "needsReview": False, "concrete": True,
       "lastUpvote": None, "id": 111755, "type": "Moderation", "nsfwLevel": 4, "name": "suggestive"}


def single(image_id: int) -> str:
    return "https://civitai.com/api/trpc/tag.getVotableTags?input=" + quote(
        json.dumps({"json": {"id": image_id, "type": "image"}}))


def batch(image_id: int) -> str:
    inputs = {"0": {"json": {"id": image_id}}, "1": {"json": {"id": image_id, "type": "image"}}}
    return "https://civitai.com/api/trpc/image.get,tag.getVotableTags?batch=1&input=" + quote(json.dumps(inputs))


def test_which_request_asks_for_the_tags():
    assert trpc_answer.call_index(single(5), 5) == 0
    assert trpc_answer.call_index(single(5), 6) is None
    assert trpc_answer.call_index(batch(5), 5) == 1
    assert trpc_answer.call_index("https://civitai.com/api/trpc/image.get?input=%7B%7D", 5) is None
    post = "https://civitai.com/api/trpc/tag.getVotableTags"
    assert trpc_answer.call_index(post, 7, json.dumps({"json": {"id": 7, "type": "image"}})) == 0


@pytest.mark.parametrize("encode", [lambda d: superjson(d), lambda d: devalue_stringify(d)], ids=["superjson", "devalue"])
def test_answers_in_either_encoding(encode):
    body = {"result": {"data": encode([TAG])}}
    tags = trpc_answer.votable_tags(trpc_answer.answer_data(body))
    assert [(t.id, t.name, t.type, t.nsfw_level, t.concrete, t.from_page) for t in tags] == [
        (111755, "suggestive", "Moderation", 4, True, False)]
    batched = [{"result": {"data": encode({"id": 1})}}, body]
    assert trpc_answer.votable_tags(trpc_answer.answer_data(batched, 1))[0].id == 111755


def test_devalue_special_values_and_bad_input():
    assert trpc_answer.devalue_parse('[{"a":1,"b":-1},5]') == {"a": 5, "b": None}  # by index
    assert trpc_answer.devalue_parse('[["Date","2026-01-01T00:00:00.000Z"]]') == "2026-01-01T00:00:00.000Z"
    with pytest.raises(trpc_answer.AnswerError):
        trpc_answer.devalue_parse('[{"a":9}]')
    with pytest.raises(trpc_answer.AnswerError):
        trpc_answer.devalue_parse("<html>")
    with pytest.raises(trpc_answer.AnswerError):
        trpc_answer.answer_data({"result": "oops", "data": [1, 2, 3]})


def test_error_entries():
    error = {"error": {"json": {"message": "x", "code": -32001, "data": {"code": "UNAUTHORIZED", "httpStatus": 401}}}}
    assert trpc_answer.error_status(error) == 401
    assert trpc_answer.error_status([{"result": {"data": {"json": []}}}, error], 1) == 401
    assert trpc_answer.error_status({"result": {"data": {"json": []}}}) is None
