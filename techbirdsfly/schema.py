"""OpenAPI post-processing: the error answers that every operation can give, documented in one place.

Views document what is particular to them (a 404 for another user's object, a 409). The answers
that come from the project rather than the view are added here, so that no view can forget them
(the schema fuzzer in faults/tests/test_schema_fuzz.py found operations that did):

- 401 on every operation that takes a Bearer token (DRF's authentication runs before the view);
- 400 on every operation with a JSON body (malformed JSON), and 413 (a body over DATA_UPLOAD_MAX_MEMORY_SIZE);
- 503 everywhere (the database is unavailable: techbirdsfly/exceptions.py);
- a JSON body for every error answer: DRF's ``{"detail": ...}``, or field → messages for a 400.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": 'DRF\'s error shape: {"detail": "..."}, or field name -> list of messages for a 400.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
COMMON = {
    "400": "Malformed JSON or an invalid field (the answer names it).",
    "413": "The body is over the size limit (the answer names it).",
    "401": "No token, or an invalid, expired or revoked one.",
    "503": "The database is unavailable; try again after Retry-After seconds.",
}
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _takes_token(operation: dict[str, Any], schema: dict[str, Any]) -> bool:
    security = operation.get("security", schema.get("security", []))
    return any("bearerAuth" in requirement for requirement in security)


def document_error_answers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            wanted = ["503"]
            if _takes_token(operation, result):
                wanted.append("401")
            if "requestBody" in operation:
                wanted += ["400", "413"]
            for status in wanted:
                responses.setdefault(status, {"description": COMMON[status]})
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    response["content"] = error
                    response["description"] = response.get("description") or COMMON.get(status, "")
    return result
