"""hubgate.bounded_json: depth counted without recursion, size, encodings, and
brackets inside strings that must not count."""

from __future__ import annotations

import json

import pytest

from hubgate import bounded_json
from hubgate.bounded_json import MAX_DEPTH, JsonRefused, JsonTooDeep, JsonTooLarge


def nested(depth: int, opener: str = "[") -> str:
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


def test_documents_within_the_bounds_are_parsed() -> None:
    document = {"schemas": ["urn:x"], "name": {"givenName": "Ada"}, "emails": [{"value": "a@b"}]}
    assert bounded_json.loads(json.dumps(document).encode()) == document
    assert bounded_json.loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert bounded_json.loads(json.dumps({"k": 1}).encode("utf-16")) == {"k": 1}
    assert bounded_json.loads(b"\xef\xbb\xbf{}") == {}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_is_refused_without_recursion(depth: int, opener: str) -> None:
    with pytest.raises(JsonTooDeep) as caught:
        bounded_json.loads(nested(depth, opener).encode())
    assert caught.value.code == "json_too_deep" and caught.value.status == 400


def test_unclosed_nesting_is_refused_as_too_deep() -> None:
    with pytest.raises(JsonTooDeep):
        bounded_json.check("[" * 10_000)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 1000 + '\\"[{' * 100, "b": ["]]]]}}}}"]})
    assert bounded_json.loads(text)["b"] == ["]]]]}}}}"]


def test_a_quote_escaped_inside_a_string_does_not_end_it() -> None:
    hidden = json.dumps(['\\"' + "[" * 100]) + "[" * (MAX_DEPTH + 1)
    with pytest.raises(JsonTooDeep):
        bounded_json.check(hidden)


def test_oversized_documents_are_refused_before_parsing() -> None:
    with pytest.raises(JsonTooLarge) as caught:
        bounded_json.loads(b"[" + b"1," * 600_000 + b"1]")
    assert caught.value.code == "json_too_large"
    assert bounded_json.loads(b"[1, 2]", max_bytes=6) == [1, 2]
    with pytest.raises(JsonTooLarge):
        bounded_json.loads(b"[1, 2] ", max_bytes=6)


@pytest.mark.parametrize("document", [b"", b"{", b"[1,]", b"\xff\xfe\xfd", b"nope", b'"\\'])
def test_what_is_not_json_is_refused(document: bytes) -> None:
    with pytest.raises(JsonRefused) as caught:
        bounded_json.loads(document)
    assert caught.value.code == "invalid_json"


def test_an_unterminated_string_is_one_token_of_the_depth_scan() -> None:
    """A string whose closing quote never comes is one token to the end of the text,
    so the scan reads the text once. A pattern that needed the closing quote would
    start the string again at each escaped quote inside it (quadratic: minutes for
    this text). The brackets at the end are inside the string: they force the scan
    and do not count."""
    text = '"' + 'a\\"' * 300_000 + "[" * (MAX_DEPTH + 1)
    tokens = list(bounded_json._STRUCTURE.finditer(text))
    assert [t.span() for t in tokens] == [(0, len(text))]
    with pytest.raises(JsonRefused) as refused:
        bounded_json.loads(text)
    assert refused.value.code == "invalid_json"
