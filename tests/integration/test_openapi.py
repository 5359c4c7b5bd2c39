"""The OpenAPI document of ``/api/v1`` describes every JSON answer: each 2xx JSON
response of each operation has a schema that names its fields (a ``$ref`` to a
response model, or a typed value), so a route that answers an untyped dict fails
here."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def _typed(schema: dict[str, Any]) -> bool:
    """A schema that says what it holds: a reference, a scalar, a list of typed
    items, an object with named properties, or a union of typed schemas."""
    if "$ref" in schema:
        return True
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            return all(_typed(member) for member in schema[union])
    kind = schema.get("type")
    if kind == "array":
        return _typed(schema.get("items", {}))
    if kind == "object":
        return bool(schema.get("properties"))
    return kind in ("string", "integer", "number", "boolean", "null")


def _json_answers(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each (``METHOD path status``, schema) of a 2xx ``application/json`` response."""
    found = []
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in METHODS:
            responses = item.get(method, {}).get("responses", {})
            for status, response in responses.items():
                media = response.get("content", {}).get("application/json")
                if status.startswith("2") and media is not None:
                    found.append((f"{method.upper()} {path} {status}", media.get("schema", {})))
    return found


def test_every_json_answer_has_a_schema(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    answers = _json_answers(document)
    assert len(answers) >= 40
    untyped = [name for name, schema in answers if not _typed(schema)]
    assert untyped == []


def test_an_untyped_schema_is_caught() -> None:
    """The check itself: an empty schema and a free-form object are untyped."""
    assert not _typed({})
    assert not _typed({"type": "object", "additionalProperties": True})
    assert not _typed({"type": "array", "items": {}})
    assert not _typed({"anyOf": [{"$ref": "#/components/schemas/X"}, {}]})
    assert _typed({"type": "array", "items": {"$ref": "#/components/schemas/X"}})
    assert _typed({"type": "object", "properties": {"ended": {"type": "integer"}}})


def test_the_docs_page_needs_nothing_from_another_site(client: TestClient) -> None:
    """FastAPI's default page loads Swagger UI from a CDN (blank offline)."""
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(referenced) >= 4 and all(r.startswith("/") for r in referenced), referenced
    assert "<script>" not in page.text  # no inline script: a strict CSP can hold
    for path in referenced:
        assert client.get(path).status_code == 200, path
