"""A job for the ``dev`` banner's create command: one of the app's names, with a payload
its handler accepts, built from the handler's model (its JSON schema's examples, then its
defaults, then a valid value per type), so the command works as pasted."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from .._framework.app import EmitPush

__all__ = ["example_job", "example_payload"]


def example_job(app: EmitPush) -> tuple[str, Any]:
    """A name the app takes, and a payload its handler accepts (``example_payload``):
    the banner's command then works as pasted. The first name, in order, whose payload
    validates; names without a handler's model take ``{}``."""
    from .._framework.app import ANY_NAME

    names = sorted(name for name in app.handlers if name != ANY_NAME)
    first: tuple[str, Any] | None = None
    for name in names:
        payload, valid = example_payload(app.handlers[name].payload)
        if valid:
            return name, payload
        first = first or (name, payload)
    return first or ("example", {})  # "*" takes any name


def example_payload(adapter: TypeAdapter[Any] | None) -> tuple[Any, bool]:
    """A payload for a handler whose payload ``adapter`` validates (None: untyped, ``{}``),
    and whether it does validate.

    Made of the type's JSON schema: a value's ``examples`` first, then its ``default``,
    then, for a required field, a small valid value of its type (a URL for a ``uri`` or
    ``..._url`` string, a number within its bounds, one item for a list). When the
    examples do not validate (they are only documentation), they are left out.
    """
    if adapter is None:
        return {}, True
    try:
        schema = adapter.json_schema()
    except Exception:  # a type with no JSON schema: nothing to go by
        schema = {}
    # The type's own example, else its fields' examples, else neither.
    made = [_Example(schema, whole, fields).value(schema) for whole, fields in _TRIES]
    for payload in made:
        try:
            adapter.validate_python(payload)
        except ValueError:  # pydantic's ValidationError
            continue
        return payload, True
    return made[0], False


_TRIES = ((True, True), (False, True), (False, False))


class _Example:
    """Values for the parts of one JSON schema (``$ref`` read from its ``$defs``);
    ``whole``, ``fields``: whether the schema's own ``examples``, and its parts', count."""

    def __init__(self, schema: Mapping[str, Any], whole: bool, fields: bool) -> None:
        self.defs = schema.get("$defs", {})
        self.whole = whole
        self.parts = fields

    def node(self, node: Any) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = self.defs.get(ref.removeprefix("#/$defs/"), {})
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def value(self, given: Any, name: str = "", depth: int = 0) -> Any:
        node = self.node(given)
        if depth > 8:  # a recursive model: stop somewhere
            return None
        examples = node.get("examples")
        if (self.parts if depth else self.whole) and isinstance(examples, list) and examples:
            return examples[0]
        for key in ("default", "const"):
            if key in node:
                return node[key]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return node["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(node.get(key), list):
                options = [o for o in node[key] if self.node(o).get("type") != "null"]
                return self.value(options[0], name, depth + 1) if options else None
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in node:
            return self.fields(node, depth)
        if kind == "array":
            return self.items(node, name, depth)
        if kind == "string":
            return _string(node, name)
        if kind in ("integer", "number"):
            return _number(node, integer=kind == "integer")
        return False if kind == "boolean" else None

    def fields(self, node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        """The required fields, and those with an example or a default worth showing."""
        required = set(node.get("required", ()))
        made = {}
        for key, field in node.get("properties", {}).items():
            part = self.node(field)
            shown = (
                key in required
                or (self.parts and bool(part.get("examples")))
                or part.get("default") not in (None, "", [], {})
            )
            if shown:
                made[key] = self.value(field, key, depth + 1)
        return made

    def items(self, node: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        if isinstance(node.get("prefixItems"), list):  # a tuple
            return [self.value(item, name, depth + 1) for item in node["prefixItems"]]
        # One item shows its shape; deeper down (a recursive model), none unless required.
        count = max(min(1 if depth < 3 else 0, node.get("maxItems", 1)), node.get("minItems", 0))
        return [self.value(node.get("items"), name, depth + 1) for _ in range(count)]


_FORMATS = {
    "email": "user@example.com",
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "duration": "PT1M",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}
_IMAGES = ("image", "img", "photo", "picture", "thumbnail", "avatar")


def _string(node: Mapping[str, Any], name: str) -> str:
    lowered, form = name.lower(), node.get("format", "")
    stem = re.sub(r"[^a-z0-9]+", "-", re.sub(r"_?(url|uri)$", "", lowered)).strip("-")
    if form in ("uri", "url", "iri", "uri-reference") or lowered.endswith(("url", "uri")):
        text = "https://example.com/" + ("image.png" if stem.startswith(_IMAGES) else stem)
    elif form in _FORMATS:
        text = _FORMATS[form]
    elif "email" in lowered or lowered in ("to", "cc", "bcc", "recipient", "sender"):
        text = _FORMATS["email"]
    else:
        text = "example"
    shortest: int = node.get("minLength", 0)
    longest: int | None = node.get("maxLength")
    return (text + "x" * max(shortest - len(text), 0))[:longest]


def _number(node: Mapping[str, Any], *, integer: bool) -> int | float:
    """1, or the nearest value within the bounds (and a multiple of ``multipleOf``)."""
    step = 1 if integer else 0.5
    value: float = 1
    if "minimum" in node:
        value = max(value, node["minimum"])
    if "exclusiveMinimum" in node:
        value = max(value, node["exclusiveMinimum"] + step)
    if "maximum" in node:
        value = min(value, node["maximum"])
    if "exclusiveMaximum" in node:
        value = min(value, node["exclusiveMaximum"] - step)
    if node.get("multipleOf"):
        value = math.ceil(value / node["multipleOf"]) * node["multipleOf"]
    return math.ceil(value) if integer else value
