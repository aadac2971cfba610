"""The fault suite's accounting: one row per worker run, checked record by record against the
hostile generator's expectations, and the table printed at the end of the pytest run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ROWS: list["FaultRow"] = []


@dataclass
class FaultRow:
    worker: str
    sent: int = 0
    outcomes: Counter = field(default_factory=Counter)  # applied/served/duplicate/stale/cold_start/reasons
    dead_lettered: Counter = field(default_factory=Counter)  # reason -> count
    retried: int = 0  # retry attempts the workers logged
    lost: int = 0  # records with no outcome, or another outcome than expected
    crashes: int = 0  # worker exits nobody asked for
    faults: list[str] = field(default_factory=list)  # what was done to the worker

    def check(self) -> None:
        assert self.lost == 0 and self.crashes == 0, render_table([self])


def render_table(rows: list[FaultRow]) -> str:
    header = ("worker", "sent", "applied/served", "duplicate/stale", "dead-lettered by reason", "retried",
              "lost", "crashes", "faults")
    lines = [header]
    for r in rows:
        ok = sum(r.outcomes[k] for k in ("applied", "served", "cold_start"))
        skipped = sum(r.outcomes[k] for k in ("duplicate", "stale"))
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(r.dead_lettered.items())) or "-"
        lines.append((r.worker, str(r.sent), str(ok), str(skipped), reasons, str(r.retried), str(r.lost),
                      str(r.crashes), "; ".join(r.faults)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
