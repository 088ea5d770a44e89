"""Signatures on what the gate writes: HMAC-SHA-256 over a file's canonical JSON, with a key from the environment.

The canonical form of a record, report or decision is its JSON data without the ``signature`` member, encoded
with sorted keys, no spaces and ASCII escapes (``json.dumps(data, sort_keys=True, separators=(",", ":"))``).
The signature is ``hmac-sha256:<64 hex>``. See docs/records.md, "Trust", for what it does and does not protect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

import msgspec

from pytest_llmgate.records.codec import Entries, shallow_data
from pytest_llmgate.model.vocab import SIGNING_KEY_ENV

SIGNATURE = "signature"
PREFIX = "hmac-sha256:"


def signing_key() -> bytes | None:
    """The key in ``LLMGATE_SIGNING_KEY`` (UTF-8 bytes), or None when it is unset or empty."""
    value = os.environ.get(SIGNING_KEY_ENV)
    return value.encode("utf-8") if value else None


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes signed: the data without its signature, sorted keys, compact, ASCII."""
    body = {key: value for key, value in data.items() if key != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def signature_of(data: Mapping[str, Any], key: bytes) -> str:
    return PREFIX + hmac.new(key, canonical(data), hashlib.sha256).hexdigest()


def signature_of_struct(obj: Any, key: bytes) -> str:
    """``signature_of(to_data(obj), key)``, worked out without turning a long per-case list into dicts all at
    once: the canonical bytes are hashed piece by piece, each entry's as it comes."""
    data = shallow_data(obj)
    body = {name: value for name, value in data.items() if name != SIGNATURE}
    lists = {name: value for name, value in body.items() if isinstance(value, Entries)}
    marks = {name: f"\x00llmgate-entries:{name}\x00" for name in lists}
    text = json.dumps({**body, **marks}, sort_keys=True, separators=(",", ":")).encode("ascii")
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(lists, key=lambda name: text.index(json.dumps(marks[name]).encode("ascii"))):
        before, text = text.split(json.dumps(marks[name]).encode("ascii"), 1)
        mac.update(before + b"[")
        for index, entry in enumerate(lists[name]):
            piece = json.dumps(msgspec.to_builtins(entry), sort_keys=True, separators=(",", ":"))
            mac.update(piece.encode("ascii") if index == 0 else b"," + piece.encode("ascii"))
        mac.update(b"]")
    mac.update(text)
    return PREFIX + mac.hexdigest()


def signed(data: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """``data`` with its signature (unchanged without a key)."""
    if key is None:
        return data
    return {**data, SIGNATURE: signature_of(data, key)}


def signature_problem(data: Any, key: bytes) -> str | None:
    """Why ``data`` (a decoded JSON file) does not carry a good signature under ``key``; None when it does."""
    if not isinstance(data, dict):
        return "is not a JSON object"
    stored = data.get(SIGNATURE)
    if stored is None:
        return f"is not signed, and {SIGNING_KEY_ENV} is set: unsigned files are refused"
    if not isinstance(stored, str) or not hmac.compare_digest(stored, signature_of(data, key)):
        return (f"signature does not match (checked with {SIGNING_KEY_ENV}): the file was altered after it was "
                "signed, or signed with another key")
    return None
