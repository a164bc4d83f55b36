"""The JSON parser of every API view: DRF's, refusing two inputs that DRF lets through to a 500.

- JSON nested deeper than Python's recursion limit makes ``json`` raise RecursionError, which is not
  the ValueError DRF turns into a 400.
- A ``\\ud800``-``\\udfff`` escape without its pair decodes to a lone surrogate: not text. PostgreSQL
  cannot store it and UTF-8 cannot encode it, so a view would fail when it saved the value or when
  it echoed it in an error message ("... is not a valid choice").
Both answer 400 like any malformed JSON (faults/tests/test_bad_input.py).
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:  # not recursive: the data may be nested as deep as json allowed
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        if has_lone_surrogate(data):
            raise ParseError("JSON parse error - a string holds an unpaired UTF-16 surrogate escape.")
        return data
