"""Business metrics of the payments service (names ops dashboards and alert rules rely on)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

payments_executed = Counter("payments_executed_total", "Payments executed (« mise en paiement »)", ["kind"])
payments_amount = Counter("payments_amount_eur_total", "Amount paid, EUR", ["kind"])
payments_failed = Counter("payments_failed_total", "Payment orders rejected by the accountant or the bank", ["kind"])
payment_orders = Counter("payment_orders_total", "Payment orders issued", ["channel", "kind"])
late_payments = Counter("late_payments_total", "Payments executed after their legal due date")
late_interest = Counter("late_interest_eur_total", "Late-payment interest and indemnities assessed, EUR")
payables_pending = Gauge("payables_pending", "Payables not yet paid (scheduled, ordered or held)", ["kind"])
unmatched_confirmations = Gauge(
    "payment_confirmations_unmatched",
    "Confirmation entries that match no order or contradict it, waiting for an operator")

# Every series exists from the start at 0, so that the first payment, failure or order after a
# restart is an increase Prometheus can see.
for _kind in ("invoice", "advance", "interest"):
    payments_executed.labels(_kind)
    payments_amount.labels(_kind)
    payments_failed.labels(_kind)
    payables_pending.labels(_kind)
    for _channel in ("accountant", "sepa", "offset"):
        payment_orders.labels(_channel, _kind)
