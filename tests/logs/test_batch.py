"""Encoding a batch: one bad entry ships in a safe form, and the rest as they are."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from emit_push._logs.batch import Batch
from tests.sdk.conftest import Sdk

PHOTO = os.fsdecode(b"photo-\xff.jpg")  # a file name that is not UTF-8: a lone surrogate


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


def _lines(*entries: tuple[Any, Any, Any]) -> list[dict[str, Any]]:
    batch = Batch([(0.0, "info", m, meta, src) for m, meta, src in entries], 0, 100)
    return [json.loads(line) for line in batch.encode().decode().splitlines()]


def test_lone_surrogates_are_sent_as_backslash_escapes() -> None:
    lines = _lines(
        ("before", None, None),
        (PHOTO, {PHOTO: PHOTO, "list": [PHOTO]}, PHOTO),
        ("\ud800 not from a file name", None, None),
        ("after", None, None),
    )
    assert [line["message"] for line in lines] == [
        "before", "photo-\\xff.jpg", "\\ud800 not from a file name", "after",
    ]  # fmt: skip
    assert lines[1]["metadata"] == {
        "photo-\\xff.jpg": "photo-\\xff.jpg",
        "list": ["photo-\\xff.jpg"],
    }
    assert lines[1]["source"] == "photo-\\xff.jpg"


def test_objects_that_cannot_be_printed_never_spoil_the_batch() -> None:
    lines = _lines(
        (Unprintable(), None, None),
        ("metadata value", {"obj": Unprintable()}, None),
        ("metadata itself", Unprintable(), Unprintable()),
        ("a mapping that fails", BrokenMapping(), None),
        ("fine", {"n": 1}, None),
    )
    assert lines[0]["message"] == "<unprintable Unprintable object>"
    assert lines[1]["metadata"] == {"obj": "<unprintable Unprintable object>"}
    assert lines[2]["metadata"] == {"value": "<unprintable Unprintable object>"}
    assert lines[2]["source"] == "<unprintable Unprintable object>"
    assert "repr" in lines[3]["metadata"]
    assert (lines[4]["message"], lines[4]["metadata"]) == ("fine", {"n": 1})


async def test_the_other_lines_of_the_batch_arrive(sdk: Sdk) -> None:
    client = sdk.client()
    ref = await sdk(client.jobs.create({"name": "files"}))
    job = await sdk(client.jobs.claim(ref.id))
    for n in range(100):
        if n == 40:
            job.log.info(f"resized {PHOTO}", metadata={"file": PHOTO})
        elif n == 60:
            job.log.warn("odd metadata", metadata={"thing": Unprintable()})
        else:
            job.log.info(f"line {n}")
    await sdk.close(job)
    logs = (await sdk(job.get_logs(limit=1000))).logs
    assert len(logs) == 100
    assert (logs[40].message, logs[40].metadata) == (
        "resized photo-\\xff.jpg", {"file": "photo-\\xff.jpg"},
    )  # fmt: skip
    assert logs[60].metadata == {"thing": "<unprintable Unprintable object>"}
    others = [e.message for n, e in enumerate(logs) if n not in {40, 60}]
    assert others == [f"line {n}" for n in range(100) if n not in {40, 60}]
    assert (job.log.sent, job.log.lost) == (100, 0)
