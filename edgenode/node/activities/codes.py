"""Order ids and pickup codes (取票码).

A pickup code is 8 decimal digits from ``secrets`` (10^8 possibilities) and is
shown to the villager once.  The database keeps only HMAC-SHA256(key, code):
the key lives in ``DATA_DIR/activities.key`` (mode 0600), outside the
database, so someone holding a copy of ``edgenode.db`` can neither read codes
nor test all 10^8 candidates against the stored hashes.  Checking a code is
one indexed lookup of its HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime
from pathlib import Path

from edgenode.core.keyfile import read_or_create

CODE_RE = re.compile(r"^\d{8}$")
ORDER_RE = re.compile(r"^\d{20}$")
KEY_FILE = "activities.key"
_KEYS: dict[str, bytes] = {}


def key_path(cfg) -> Path:
    return cfg.data_path / KEY_FILE


def load_key(cfg) -> bytes:
    """The HMAC key, made once (``edgenode.core.keyfile``: two processes starting together agree on one key)."""
    path = key_path(cfg)
    cached = _KEYS.get(str(path))
    if cached:
        return cached
    # Never replaced when damaged: a new key would silently invalidate every pickup code.
    text = read_or_create(path)
    key = bytes.fromhex(text)
    _KEYS[str(path)] = key
    return key


def new_code() -> str:
    return f"{secrets.randbelow(10 ** 8):08d}"


def code_hash(key: bytes, code: str) -> str:
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(text: str) -> str | None:
    """Digits only (people type spaces or dashes when reading a code aloud); None if not 8 digits."""
    digits = re.sub(r"[\s-]", "", str(text or ""))[:32]
    return digits if CODE_RE.match(digits) else None


def new_order_id(now: float | None = None) -> str:
    """Like the county platforms' 订单ID: local time to the second, then 6 random digits."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y%m%d%H%M%S")
    return stamp + f"{secrets.randbelow(10 ** 6):06d}"
