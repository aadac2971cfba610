"""SID token format: one namespace per level, ``<SID_m=j>`` with level m in 1..M and code j in 0..K-1.

An episode with codes (13, 65, 188, 7) is written ``<SID_1=13><SID_2=65><SID_3=188><SID_4=7>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN_RE = re.compile(r"<SID_(\d+)=(\d+)>")


class SidFormatError(ValueError):
    """Text that should hold SID tokens does not."""


def sid_token(level: int, code: int) -> str:
    """Token for ``code`` at 1-based ``level``."""
    if level < 1 or code < 0:
        raise SidFormatError(f"bad SID token level={level} code={code}")
    return f"<SID_{level}={code}>"


def all_sid_tokens(levels: int, codebook_size: int) -> list[str]:
    """Every SID token, level-major: what gets added to the LM vocabulary (M x K tokens)."""
    return [sid_token(m, j) for m in range(1, levels + 1) for j in range(codebook_size)]


def format_sid(codes: Sequence[int]) -> str:
    """``(13, 65)`` -> ``"<SID_1=13><SID_2=65>"``."""
    return "".join(sid_token(m, int(c)) for m, c in enumerate(codes, start=1))


def parse_sid(text: str, levels: int | None = None, codebook_size: int | None = None) -> tuple[int, ...]:
    """Inverse of :func:`format_sid`; levels must run 1, 2, ... in order, codes below ``codebook_size``."""
    matches = _TOKEN_RE.findall(text)
    if not matches or _TOKEN_RE.sub("", text).strip():
        raise SidFormatError(f"not a SID sequence: {text[:80]!r}")
    codes = []
    for expected, (level, code) in enumerate(matches, start=1):
        if int(level) != expected:
            raise SidFormatError(f"SID level {level} found where level {expected} was expected")
        codes.append(int(code))
    if levels is not None and len(codes) != levels:
        raise SidFormatError(f"expected {levels} SID levels, got {len(codes)}")
    if codebook_size is not None and max(codes) >= codebook_size:
        raise SidFormatError(f"SID code {max(codes)} is outside the codebook [0, {codebook_size})")
    return tuple(codes)
