"""Catalog values into the widgets' plain rows: the only place the two rooms meet."""

from __future__ import annotations

from datetime import datetime

from services.models import ClusterSummary
from services.text import safe_text
from tui import glyphs, present
from widgets.cluster_table import ClusterRow


def cluster_row(s: ClusterSummary, now: datetime) -> ClusterRow:
    """One table row; what Kubernetes or storage named is shown with its control
    characters escaped (the key keeps the real names: it finds the row's summary)."""
    c = s.cluster
    last = s.last_backup
    return ClusterRow(
        key="/".join((c.context, c.namespace, c.name)),
        namespace=safe_text(c.namespace or "-"),
        name=safe_text(c.name),
        team=safe_text(c.team or "-"),
        version=safe_text(c.version or "-"),
        status=safe_text(c.status or "-") if c.in_kubernetes else "storage-only",
        backups=safe_text("on " + (c.schedule or ""))
        if c.logical_backup
        else ("off" if c.in_kubernetes else "-"),
        count=s.backups,
        age=present.age(last.time, now) if last else "never",
        size=present.size(last.size) if last else "-",
        sizes=s.recent_sizes,
        dimmed=not c.in_kubernetes,
        health=glyphs.health(s.health),
        health_detail=safe_text(s.health.detail) if s.health else "",
        context=c.context,
    )
