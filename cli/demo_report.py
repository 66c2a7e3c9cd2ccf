"""What a finance user reads after a demo run: the summary (received, rejected by reason, paid,
payment delays against the legal 30 days and the Region's 15-day target, late payments and their
interest, advances granted / recovered / outstanding, the audit chain), the invariants the run
must hold, and an HTML page with charts. Read from the namespace's database with the admin role:
this is reporting, no service's data is changed."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import asyncpg

from shared.settings import Settings

TERMINAL = ("paid", "rejected", "to_recycle", "refused")
DAYS_LEFT_SERIES = (("overdue", None), ("<= 5 days", 5), ("<= 10 days", 10), ("<= 15 days", 15), ("<= 30 days", 30))


async def open_by_days_left(conn: asyncpg.Connection, today: date) -> dict[str, int]:
    """Unpaid, not interrupted invoices by days left before their legal due date (cumulative)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE legal_due < $1) AS overdue,
                  count(*) FILTER (WHERE legal_due - $1 <= 5) AS d5,
                  count(*) FILTER (WHERE legal_due - $1 <= 10) AS d10,
                  count(*) FILTER (WHERE legal_due - $1 <= 15) AS d15,
                  count(*) FILTER (WHERE legal_due - $1 <= 30) AS d30
           FROM invoices.invoices
           WHERE status NOT IN ('paid', 'rejected', 'to_recycle', 'refused', 'interrupted', 'received')
             AND legal_due IS NOT NULL""", today)
    return dict(zip((name for name, _ in DAYS_LEFT_SERIES), row.values()))


async def summarize(settings: Settings) -> dict:
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        received = await conn.fetchval("SELECT count(*) FROM invoices.invoices")
        by_status = dict(await conn.fetch("SELECT status, count(*) FROM invoices.invoices GROUP BY 1 ORDER BY 1"))
        rejected = dict(await conn.fetch(
            """SELECT status || ' ' || coalesce(reasons -> 0 ->> 'rule', '?'), count(*) FROM invoices.invoices
               WHERE status IN ('rejected', 'to_recycle') GROUP BY 1 ORDER BY 1"""))
        delays = await conn.fetchrow(
            """SELECT count(*) AS paid,
                      avg(paid_on - (received_at AT TIME ZONE 'Europe/Paris')::date) AS average,
                      percentile_cont(0.95) WITHIN GROUP (
                          ORDER BY paid_on - (received_at AT TIME ZONE 'Europe/Paris')::date) AS p95,
                      count(*) FILTER (WHERE paid_on <= legal_due) AS within_legal,
                      count(*) FILTER (WHERE paid_on <= target_due) AS within_target
               FROM invoices.invoices WHERE status = 'paid'""")
        distribution = dict(await conn.fetch(
            """SELECT paid_on - (received_at AT TIME ZONE 'Europe/Paris')::date, count(*)
               FROM invoices.invoices WHERE status = 'paid' GROUP BY 1 ORDER BY 1"""))
        late = await conn.fetchrow(
            """SELECT count(*) AS late,
                      coalesce(sum(p.gross_amount), 0) AS assessed,
                      coalesce(sum(p.gross_amount) FILTER (WHERE p.status = 'paid'), 0) AS paid,
                      count(*) FILTER (WHERE p.payable_id IS NULL) AS waiting
               FROM payments.late_payments l
               LEFT JOIN payments.payables p ON p.payable_id = 'interest:' || l.payable_id""")
        payments = await conn.fetch(
            """SELECT kind, count(*) FILTER (WHERE status = 'paid') AS paid,
                      coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0) AS amount,
                      count(*) FILTER (WHERE status <> 'paid') AS pending
               FROM payments.payables GROUP BY kind ORDER BY kind""")
        returned = await conn.fetchval("SELECT count(*) FROM payments.payment_orders WHERE status = 'failed'")
        advances = await conn.fetchrow(
            """SELECT count(*) FILTER (WHERE amount > 0) AS granted, count(*) FILTER (WHERE amount = 0) AS none,
                      sum(amount) AS granted_eur, sum(paid) AS paid_eur, sum(recovered) AS recovered_eur,
                      sum(amount - recovered) FILTER (WHERE paid > 0) AS outstanding_eur
               FROM advances.advances""")
    finally:
        await conn.close()
    paid = delays["paid"]
    return {
        "invoices": {
            "received": received, "by_status": by_status, "rejected_by_reason": rejected,
            "paid": paid,
            "average_payment_delay_days": _round(delays["average"]),
            "p95_payment_delay_days": _round(delays["p95"]),
            "share_paid_within_30_days": _share(delays["within_legal"], paid),
            "share_paid_within_15_day_target": _share(delays["within_target"], paid),
            "payment_delay_distribution": {str(days): n for days, n in distribution.items()},
        },
        "payments": {row["kind"]: {"paid": row["paid"], "amount_eur": str(row["amount"]), "pending": row["pending"]}
                     for row in payments} | {"returned_transfers": returned},
        "late_payments": {"count": late["late"], "interest_and_indemnities_eur": str(late["assessed"]),
                          "paid_eur": str(late["paid"]), "waiting_for_a_rate": late["waiting"]},
        "advances": {"granted": advances["granted"], "not_granted": advances["none"],
                     "granted_eur": str(advances["granted_eur"] or 0), "paid_eur": str(advances["paid_eur"] or 0),
                     "recovered_eur": str(advances["recovered_eur"] or 0),
                     "outstanding_eur": str(advances["outstanding_eur"] or 0)},
    }


async def invariants(settings: Settings) -> dict[str, list]:
    """Each invariant with the rows that break it (empty lists: the run is sound)."""
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        # In progress is explained when something named holds it: a person's decision with the
        # reasons automatic approval gave, an interruption, a payable waiting for its run or its
        # hold, an order waiting for the counterparty.
        unexplained = await conn.fetch(
            """SELECT i.invoice_id::text, i.status FROM invoices.invoices i
               LEFT JOIN payments.payables p ON p.payable_id = 'invoice:' || i.invoice_id
               WHERE i.status = 'received'
                  OR (i.status IN ('validated', 'service_done', 'completed') AND i.approval_waits_for = '[]'::jsonb)
                  OR (i.status = 'approved' AND (p.payable_id IS NULL OR p.status NOT IN ('scheduled', 'on_hold')))
                  OR (i.status = 'payment_ordered' AND (p.payable_id IS NULL OR p.status <> 'ordered'))""")
        paid_twice = await conn.fetch(
            """SELECT payable_id, count(*) FROM payments.payment_orders WHERE status = 'executed'
               GROUP BY payable_id HAVING count(*) > 1""")
        paid_not_ordered = await conn.fetch(
            """SELECT i.invoice_id::text FROM invoices.invoices i
               LEFT JOIN payments.payment_orders o
                 ON o.payable_id = 'invoice:' || i.invoice_id AND o.status = 'executed'
               WHERE i.status = 'paid' AND o.order_id IS NULL""")
        late_without_interest = await conn.fetch(
            """SELECT o.payable_id, o.executed_on, p.legal_due FROM payments.payment_orders o
               JOIN payments.payables p USING (payable_id)
               LEFT JOIN payments.payables i ON i.payable_id = 'interest:' || o.payable_id
               WHERE o.status = 'executed' AND p.kind <> 'interest' AND p.amount > 0
                 AND o.executed_on > p.legal_due AND i.payable_id IS NULL""")
        unrecovered = await conn.fetch(
            """SELECT a.contract_id, a.amount, a.recovered, a.executed, c.amount_ttc FROM advances.advances a
               JOIN advances.contracts c USING (contract_id)
               WHERE a.amount > 0 AND a.executed >= c.amount_ttc * a.recovery_end_pct / 100
                 AND a.recovered <> a.amount""")
    finally:
        await conn.close()
    return {
        "invoices_neither_terminal_nor_explained": [dict(r) for r in unexplained],
        "payables_paid_twice": [dict(r) for r in paid_twice],
        "invoices_paid_without_an_executed_order": [dict(r) for r in paid_not_ordered],
        "late_payments_without_interest": [{k: str(v) for k, v in r.items()} for r in late_without_interest],
        "finished_contracts_not_fully_recovered": [{k: str(v) for k, v in r.items()} for r in unrecovered],
    }


def verify_audit(settings: Settings) -> dict:
    """``invoicing audit verify`` on the namespace: its exit code and its answer."""
    env = {**os.environ, "INVOICING_NAMESPACE": settings.namespace}
    done = subprocess.run([sys.executable, "-m", "cli.main", "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = {"output": (done.stdout + done.stderr)[-500:]}
    return {"verified": done.returncode == 0, "exit_code": done.returncode, "answer": answer}


def write_html(path: Path, summary: dict, series: list[tuple[str, dict[str, int]]]) -> None:
    invoices = summary["invoices"]
    distribution = {int(k): v for k, v in invoices["payment_delay_distribution"].items()}
    buckets = [(f"{low}-{low + 4}", sum(n for d, n in distribution.items() if low <= d <= low + 4))
               for low in range(0, max(distribution, default=0) + 1, 5)]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in _flat(summary))
    page = f"""<!doctype html><html lang="en"><meta charset="utf-8">
<title>Payment of the Region's suppliers: demo report</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}}
h2{{margin-top:1.6em}}</style>
<h1>Demo report</h1>
<p>{invoices['received']} invoices received, {invoices['paid']} paid; average delay
{invoices['average_payment_delay_days']} days (95th percentile {invoices['p95_payment_delay_days']}),
{_pct(invoices['share_paid_within_30_days'])} within the legal 30 days and
{_pct(invoices['share_paid_within_15_day_target'])} within the Region's 15-day target.</p>
<h2>Payment delay (receipt to « mise en paiement »), invoices per 5-day band</h2>
{_bars(buckets, marks={"15": "target", "30": "legal limit"})}
<h2>Open invoices by days left before the legal due date, day by day</h2>
{_lines(series)}
<h2>Figures</h2><table>{rows}</table></html>"""
    path.write_text(page, encoding="utf-8")


def _bars(buckets: list[tuple[str, int]], marks: dict[str, str]) -> str:
    if not buckets:
        return "<p>No invoice paid.</p>"
    width, height, top = 900, 260, max(n for _, n in buckets) or 1
    step = width / len(buckets)
    parts = []
    for i, (label, n) in enumerate(buckets):
        h = (height - 40) * n / top
        x = i * step
        parts.append(f'<rect x="{x + 4:.0f}" y="{height - 20 - h:.0f}" width="{step - 8:.0f}" height="{h:.0f}" '
                     f'fill="#3b7dd8"><title>{label} days: {n}</title></rect>'
                     f'<text x="{x + step / 2:.0f}" y="{height - 5}" font-size="11" text-anchor="middle">{label}</text>'
                     f'<text x="{x + step / 2:.0f}" y="{height - 24 - h:.0f}" font-size="11" '
                     f'text-anchor="middle">{n}</text>')
        low = int(label.split("-")[0])
        for limit, name in marks.items():
            if low <= int(limit) <= low + 4:
                parts.append(f'<text x="{x + step / 2:.0f}" y="12" font-size="11" fill="#c0392b" '
                             f'text-anchor="middle">{name} ({limit} d)</text>')
    return f'<svg width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'


def _lines(series: list[tuple[str, dict[str, int]]]) -> str:
    if not series:
        return "<p>No sample.</p>"
    width, height = 900, 280
    names = [name for name, _ in DAYS_LEFT_SERIES]
    top = max(max(sample.values(), default=0) for _, sample in series) or 1
    colours = dict(zip(names, ("#c0392b", "#e67e22", "#f1c40f", "#27ae60", "#3b7dd8")))
    step = (width - 60) / max(1, len(series) - 1)
    parts = []
    for name in names:
        points = " ".join(f"{40 + i * step:.0f},{height - 30 - (height - 50) * sample.get(name, 0) / top:.0f}"
                          for i, (_, sample) in enumerate(series))
        parts.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2" points="{points}"/>')
    legend = "".join(f'<text x="{50 + 150 * i}" y="14" font-size="12" fill="{colours[name]}">{name}</text>'
                     for i, name in enumerate(names))
    ticks = "".join(f'<text x="{40 + i * step:.0f}" y="{height - 10}" font-size="10" text-anchor="middle">'
                    f'{day[5:]}</text>' for i, (day, _) in enumerate(series) if i % 7 == 0)
    axis = f'<text x="4" y="{height - 30}" font-size="10">0</text><text x="4" y="40" font-size="10">{top}</text>'
    return f'<svg width="{width}" height="{height}" role="img">{legend}{"".join(parts)}{ticks}{axis}</svg>'


def _flat(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in data.items():
        if key == "payment_delay_distribution":
            continue
        if isinstance(value, dict):
            items += _flat(value, f"{prefix}{key} / ")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _round(value) -> float | None:
    return None if value is None else round(float(value), 1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
