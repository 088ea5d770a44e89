"""Fingerprints: SHA-256 over the canonical JSON of a set of cases, independent of row order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

SHORT = 16


def canonical_json(cases: Iterable[Mapping[str, Any]]) -> bytes:
    """The bytes a fingerprint hashes: the cases sorted by ``case_id``, keys sorted, no spaces."""
    ordered = sorted(cases, key=lambda case: case["case_id"])
    return json.dumps(ordered, sort_keys=True, separators=(",", ":")).encode("ascii")


def fingerprint(cases: Iterable[Mapping[str, Any]]) -> str:
    """The 64-hex SHA-256 fingerprint of ``cases``."""
    return hashlib.sha256(canonical_json(cases)).hexdigest()


def short(fingerprint_hex: str) -> str:
    """The short form: the first 16 hex digits."""
    return fingerprint_hex[:SHORT]


def value_sha256(value: Any) -> str:
    """SHA-256 of any JSON value in canonical form (how inputs appear in records)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")
    return hashlib.sha256(data).hexdigest()
