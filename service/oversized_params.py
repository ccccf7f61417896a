"""The answer to a `params` part over its size limit, naming the field it is oversized in.

Past `MAX_PARAMS_BYTES` the part is not parsed as a whole; its first `MAX_PARAMS_BYTES` are read
member by member up to the value the limit falls in. A too-long text field (`prompt`,
`reference_prompt`) gets the answer any too-long prompt gets (422 `invalid_value` naming it, from
the task model's own rule), whatever its size; another field the limit falls in is named in a
413; an over-long part with no such field (padding, say) is a 413 naming `params`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from diffeditor.tasks import PARAMS_BY_TASK
from service.errors import ApiError, validation_error_to_api

MAX_PARAMS_BYTES = 256 * 1024  # the params part is parsed as JSON up to this size
# A multipart text part is read up to this size (Starlette's default), so that one past
# MAX_PARAMS_BYTES can still be answered by its field; past this, its size is all that is known.
MAX_PARAMS_PART_BYTES = 1024 * 1024

_SPACE = re.compile(r"[ \t\n\r]*")
_LONGEST_ESCAPE = 12  # r"\ud83d\ude00": a cut inside one leaves at most this many characters undecodable


def params_too_large(field: str = "params") -> ApiError:
    if field == "params":
        return ApiError(413, "payload_too_large", f"params: larger than {MAX_PARAMS_BYTES} bytes", field)
    message = f"{field}: too long: the params part passes its {MAX_PARAMS_BYTES}-byte limit inside this field"
    return ApiError(413, "payload_too_large", message, field)


def _partial_string(raw: str) -> str | None:
    """The characters of a JSON string whose closing quote was cut off (`raw` follows the opening one)."""
    for cut in range(min(_LONGEST_ESCAPE, len(raw)) + 1):
        try:
            return json.loads('"' + raw[: len(raw) - cut] + '"')
        except ValueError:
            continue
    return None


def _member_at_cut(head: str) -> tuple[dict[str, Any], str | None, str | None]:
    """Read a JSON object cut short: its complete members, the key whose value the cut falls in
    (None when the cut falls between members or the text is no object), and that value's read
    part when it is a string."""
    decoder = json.JSONDecoder()
    members: dict[str, Any] = {}
    i = _SPACE.match(head).end()  # type: ignore[union-attr]
    if head[i : i + 1] != "{":
        return members, None, None
    i += 1
    while True:
        i = _SPACE.match(head, i).end()  # type: ignore[union-attr]
        if head[i : i + 1] != '"':
            return members, None, None
        try:
            key, i = json.decoder.scanstring(head, i + 1)  # type: ignore[attr-defined]
        except ValueError:
            return members, None, None
        i = _SPACE.match(head, i).end()  # type: ignore[union-attr]
        if head[i : i + 1] != ":":
            return members, None, None
        i = _SPACE.match(head, i + 1).end()  # type: ignore[union-attr]
        try:
            members[key], i = decoder.raw_decode(head, i)
        except ValueError:
            partial = _partial_string(head[i + 1 :]) if head[i : i + 1] == '"' else None
            return members, key, partial
        i = _SPACE.match(head, i).end()  # type: ignore[union-attr]
        if head[i : i + 1] != ",":
            return members, None, None
        i += 1


def oversized_params(text: str) -> ApiError:
    """The error for a params text over MAX_PARAMS_BYTES (only its first MAX_PARAMS_BYTES are read)."""
    head = text.encode("utf-8")[:MAX_PARAMS_BYTES].decode("utf-8", errors="ignore")
    members, key, partial = _member_at_cut(head)
    if key is None:
        return params_too_large()
    task = members.get("task")
    models = [PARAMS_BY_TASK[task]] if task in PARAMS_BY_TASK else list(PARAMS_BY_TASK.values())
    info = next((m.model_fields[key] for m in models if key in m.model_fields), None)
    if info is None or partial is None or info.annotation is not str:
        return params_too_large(key)
    try:  # the field's own rule (its max_length) on what was read: already too long, or not
        TypeAdapter(Annotated[str, info]).validate_python(partial)
    except ValidationError as exc:
        return validation_error_to_api([{**e, "loc": (key,)} for e in exc.errors()])
    return params_too_large(key)
