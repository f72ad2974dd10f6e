"""400 messages from pydantic's validation errors: plain words, each field named once.

pydantic reports a union field once per member it tried, and names the member in the
error's location (``types.constrained-str``, ``percent.int``). Locations are therefore
walked beside the model's annotations, which tells such a tag from a key the client chose
(a ``subProgress`` stage may well be called ``int``). Then, of a union's reports, those
that only say "not this type" give way to any that came closer (``[""]`` for
``str | list[str]`` is an array whose item 0 is empty); when every member was the wrong
type, one message names them all (``must be a string or an array of strings``).
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

__all__ = ["problems"]

_MAX_PROBLEMS = 5
_SNAKE = re.compile(r"_([a-z])")
_WRONG_TYPE = frozenset(
    {"string_type", "int_type", "int_from_float", "float_type", "bool_type", "list_type",
     "dict_type", "model_type", "model_attributes_type"}
)  # fmt: skip

Path = tuple[str, ...]
Found = tuple[Path, Any, Any]  # the location without tags, the error, the model it is in
UnionAt = tuple[Path, str, tuple[Any, ...]]  # where a union is, the member's tag, members


def problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """``(field, message)`` pairs, at most five; the field is dotted, "" for the body."""
    order: list[Found] = []  # errors, and (place, None, None) for a union's errors
    unions: dict[Path, tuple[dict[str, list[Found]], tuple[Any, ...]]] = {}
    for error in exc.errors():
        path, owner, union = _walk(model, error["loc"])
        if union is None:
            order.append((path, error, owner))
            continue
        at, tag, members = union
        if at not in unions:
            unions[at] = ({}, members)
            order.append((at, None, None))
        unions[at][0].setdefault(tag, []).append((path, error, owner))
    found: list[tuple[str, str]] = []
    for item in order:
        reports = [item] if item[1] is not None else _union_reports(item[0], *unions[item[0]])
        for path, error, owner in reports:
            report = (".".join(path), _describe(error, owner))
            if report not in found:
                found.append(report)
    return found[:_MAX_PROBLEMS]


def _union_reports(
    at: Path, by_member: dict[str, list[Found]], members: tuple[Any, ...]
) -> list[Found]:
    def wrong_type(reports: list[Found]) -> bool:
        return len(reports) == 1 and reports[0][0] == at and reports[0][1]["type"] in _WRONG_TYPE

    closer = [
        report for reports in by_member.values() if not wrong_type(reports) for report in reports
    ]
    if closer:
        return closer
    error = {"type": "union_type", "msg": f"must be {_nouns(members)}"}
    return [(at, error, None)]


# -- locations beside annotations --------------------------------------------------------


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Path, Any, UnionAt | None]:
    """The location without union tags, the annotation holding its last part, and the
    outermost union a tag was dropped for."""
    path: list[str] = []
    union: UnionAt | None = None
    node: Any = model
    owner: Any = model
    parts = iter(loc)
    for part in parts:
        path.append(str(part))
        owner, node = node, _child(node, part)
        members = _members(node)
        if len(members) > 1:
            tag = next(parts, None)
            if tag is None:  # a constraint on the whole union, such as ``le``
                break
            if union is None:
                union = (tuple(path), str(tag), members)
            node = _member(members, str(tag))
    return tuple(path), owner, union


def _bare(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    """A union's members other than None; otherwise the annotation alone."""
    bare = _bare(annotation)
    if get_origin(bare) in (Union, types.UnionType):
        return tuple(m for m in get_args(bare) if m is not type(None))
    return (annotation,)


def _child(annotation: Any, part: int | str) -> Any:
    members = _members(annotation)
    node = _bare(members[0]) if len(members) == 1 else Any
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(str(part))
        return Any if field is None else field.annotation
    args = get_args(node)
    if get_origin(node) is list and args:
        return args[0]
    if get_origin(node) is dict and len(args) == 2:
        return args[1]
    return Any


def _member(members: tuple[Any, ...], tag: str) -> Any:
    """The member pydantic's tag names: ``constrained-str`` is str, ``list[...]`` a list."""
    for member in members:
        bare = _bare(member)
        name = getattr(get_origin(bare) or bare, "__name__", "")
        if name and (tag == name or tag.startswith(f"{name}[") or tag.endswith(f"-{name}")):
            return member
    return Any


def _noun(annotation: Any) -> str:
    bare = _bare(annotation)
    kind = get_origin(bare) or bare
    if kind is list:
        args = get_args(bare)
        return f"an array of {_plural(args[0])}" if args else "an array"
    if kind is dict or (isinstance(kind, type) and issubclass(kind, BaseModel)):
        return "a JSON object"
    nouns = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    return nouns.get(kind, "a valid value")


def _plural(annotation: Any) -> str:
    head, of, tail = _noun(annotation).partition(" ")[2].partition(" of ")
    return f"{head}s{of}{tail}"


def _nouns(members: tuple[Any, ...]) -> str:
    nouns = [_noun(member) for member in members]
    if "a number" in nouns and "an integer" in nouns:  # int | float: any number
        nouns.remove("an integer")
    return " or ".join(dict.fromkeys(nouns))


# -- one error in words ------------------------------------------------------------------


def _describe(error: Any, owner: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "union_type":
        return str(error["msg"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        camel = _SNAKE.sub(lambda m: m.group(1).upper(), name)
        fields = getattr(_bare(owner), "model_fields", {})
        hint = f" (did you mean {camel!r}?)" if camel != name and camel in fields else ""
        return f"is not a known field{hint}"
    if kind in {"int_type", "int_from_float"}:
        return "must be an integer"
    if kind == "float_type":
        return "must be a number"
    if kind == "string_type":
        return "must be a string"
    if kind == "bool_type":
        return "must be true or false"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "must be a JSON object"
    if kind == "list_type":
        return "must be an array"
    if kind in {"less_than_equal", "greater_than_equal"}:
        bound = ctx.get("le", ctx.get("ge"))
        return f"must be {'at most' if kind == 'less_than_equal' else 'at least'} {bound}"
    if kind in {"too_short", "too_long"}:
        least = kind == "too_short"
        count = ctx.get("min_length" if least else "max_length")
        return f"must have at {'least' if least else 'most'} {count} item{'s' * (count != 1)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return "must be an http(s) URL"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    return str(error["msg"])
