"""The static HTML page annotators read: one section per listener, the profile, lists A and B side by side.

Plain HTML with inline CSS and no script, so it opens from a file anywhere; labels go into the CSV's
``label`` column (the page shows each item's review_id to find its row).
"""

from __future__ import annotations

import html

import pandas as pd

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
section { border-top: 2px solid #ccc; padding: 1em 0; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .6em; }
.lists { display: flex; gap: 2em; } .lists > div { flex: 1; }
li { margin-bottom: .5em; } .rid { color: #888; font-family: monospace; }
"""


def render_page(rows: pd.DataFrame) -> str:
    """``rows``: the review CSV's rows (listener, profile, list, rank, review_id, title, show, topic, description)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>GLIDE review</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Podcast recommendation review</h1>",
        "<p>For each listener, read the profile, then rate every recommended episode from 1 (this listener "
        "would not want it) to 5 (a perfect fit) in the <code>label</code> column of the CSV, on the row "
        "with the item's id. Lists A and B come from two systems, in random order per listener.</p>",
    ]
    for listener, part in rows.groupby("listener", sort=True):
        parts.append(f"<section><h2>{html.escape(str(listener))}</h2><pre>{html.escape(str(part['profile'].iloc[0]))}</pre>")
        parts.append("<div class='lists'>")
        for letter, items in part.groupby("list", sort=True):
            parts.append(f"<div><h3>List {html.escape(str(letter))}</h3><ol>")
            for item in items.sort_values("rank").itertuples(index=False):
                parts.append(
                    f"<li><span class='rid'>{html.escape(item.review_id)}</span> <b>{html.escape(item.title)}</b> "
                    f"({html.escape(item.show)}; {html.escape(item.topic)})<br>{html.escape(item.description)}</li>"
                )
            parts.append("</ol></div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
