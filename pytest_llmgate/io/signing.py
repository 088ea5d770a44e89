"""Signatures on what the gate writes: ``hmac-sha256:<64 hex>``, HMAC-SHA-256 with a key from the environment over
the object's canonical form (``canonical``), encoded in C straight from its ``Struct`` (a 100,000-case record is
never turned into dicts to be signed). A file is checked by decoding it and encoding that again, so the bytes
signed and the bytes checked come from one encoder. Files signed in the earlier ``json.dumps`` form keep
verifying; that form is never written. See docs/trust.md for what a signature does and does not protect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, TypeVar

import msgspec

from pytest_llmgate.model.vocab import SIGNING_KEY_ENV

SIGNATURE = "signature"
PREFIX = "hmac-sha256:"

S = TypeVar("S", bound=msgspec.Struct)

UNSIGNED = f"is not signed, and {SIGNING_KEY_ENV} is set: unsigned files are refused"
MISMATCH = (f"signature does not match (checked with {SIGNING_KEY_ENV}): the file was altered after it was signed, "
            "or signed with another key")


def signing_key() -> bytes | None:
    """The key in ``LLMGATE_SIGNING_KEY`` (UTF-8 bytes), or None when it is unset or empty."""
    value = os.environ.get(SIGNING_KEY_ENV)
    return value.encode("utf-8") if value else None


def canonical(obj: msgspec.Struct) -> bytes:
    """The bytes signed: ``obj`` without its signature, encoded by msgspec with fields and keys sorted."""
    return msgspec.json.encode(msgspec.structs.replace(obj, signature=None), order="sorted")


def signature_of(obj: msgspec.Struct, key: bytes) -> str:
    return PREFIX + hmac.new(key, canonical(obj), hashlib.sha256).hexdigest()


def sign(obj: S, key: bytes | None) -> S:
    """``obj`` with its signature (unchanged without a key)."""
    if key is None:
        return obj
    return msgspec.structs.replace(obj, signature=signature_of(obj, key))


def signature_problem(obj: msgspec.Struct, key: bytes, raw: bytes | None = None) -> str | None:
    """Why ``obj`` (decoded from the file bytes ``raw``) does not carry a good signature under ``key``; None when it
    does. ``raw`` lets a file signed in the earlier form verify."""
    stored = getattr(obj, SIGNATURE, None)
    if stored is None:
        return UNSIGNED
    if not isinstance(stored, str):
        return MISMATCH
    if hmac.compare_digest(stored, signature_of(obj, key)):
        return None
    if raw is not None and hmac.compare_digest(stored, _earlier_signature(raw, key)):
        return None
    return MISMATCH


def _earlier_signature(raw: bytes, key: bytes) -> str:
    """The signature in the form written before msgspec's canonical encoding: over the file's JSON data without
    its signature, ``json.dumps`` with sorted keys, no spaces, ASCII escapes. ``raw`` has already been decoded
    into its Struct, so its nesting is bounded."""
    data: Any = json.loads(raw)
    if not isinstance(data, dict):
        return ""
    body = {name: value for name, value in data.items() if name != SIGNATURE}
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")
    return PREFIX + hmac.new(key, text, hashlib.sha256).hexdigest()
