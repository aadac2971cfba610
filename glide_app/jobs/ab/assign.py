"""Who is in which arm: a salted hash of the user id, so the split is random across users, the same on
every run and every replica (no assignment table to keep), and new with a new salt.

Control users are split once more, by a second hash, into two halves that are served the same way:
the A/A comparison of the same run (stats.py), which must show no lift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pandas as pd

TREATMENT, CONTROL = "treatment", "control"


def unit_hash(salt: str, user_id: str) -> float:
    """A uniform draw in [0, 1) fixed by (salt, user_id)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(user_ids: Sequence[str], salt: str, treatment_share: float = 0.5) -> pd.DataFrame:
    """user_id, arm (treatment/control) and aa_half (0/1 inside each arm), in the given order."""
    users = list(user_ids)
    arm = [TREATMENT if unit_hash(salt, u) < treatment_share else CONTROL for u in users]
    half = [int(unit_hash(f"{salt}/aa", u) < 0.5) for u in users]
    return pd.DataFrame({"user_id": users, "arm": arm, "aa_half": half})
