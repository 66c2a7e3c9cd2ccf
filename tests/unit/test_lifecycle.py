from datetime import date

import pytest

from services.invoices.domain import lifecycle as lc
from services.invoices.domain.lifecycle import IllegalTransition, Invoice, State

D = date.fromisoformat


def validated() -> Invoice:
    return Invoice("INV-1", State.VALIDATED, received_on=D("2026-03-02"))


def test_the_happy_path_to_paid():
    invoice = lc.record_service_done(validated(), D("2026-03-03"))
    invoice = lc.approve(invoice)
    invoice = lc.order_payment(invoice)
    invoice = lc.record_payment(invoice)
    assert invoice.state is State.PAID and invoice.service_done_on == D("2026-03-03")
    assert lc.PUBLIC_STATUS[invoice.state] == ("MISE_EN_PAIEMENT", 211, "Paiement transmis")


def test_interruption_then_completion_then_approval():
    invoice = lc.record_service_done(validated(), D("2026-03-03"))
    invoice = lc.interrupt(invoice, D("2026-03-05"), "attestation missing", ["URSSAF attestation"])
    assert invoice.state is State.INTERRUPTED and invoice.missing_items == ("URSSAF attestation",)
    invoice = lc.complete(invoice, D("2026-03-09"))
    assert lc.PUBLIC_STATUS[invoice.state].lifecycle_code == 209
    assert lc.approve(invoice).state is State.APPROVED


@pytest.mark.parametrize(
    ("action", "state", "message"),
    [
        (lambda i: lc.approve(i), State.VALIDATED, "it is 'validated', and approve needs service_done"),
        (lambda i: lc.record_service_done(i, D("2026-03-03")), State.APPROVED, "it is 'approved'"),
        (lambda i: lc.interrupt(i, D("2026-03-05"), "r", ["x"]), State.APPROVED, "interrupt needs"),
        (lambda i: lc.interrupt(i, D("2026-03-05"), "r", ["x"]), State.PAYMENT_ORDERED, "interrupt needs"),
        (lambda i: lc.complete(i, D("2026-03-05")), State.VALIDATED, "complete needs interrupted"),
        (lambda i: lc.refuse(i, "no"), State.PAID, "it is 'paid'"),
        (lambda i: lc.order_payment(i), State.SERVICE_DONE, "needs approved"),
        (lambda i: lc.record_payment(i), State.APPROVED, "needs payment_ordered"),
        (lambda i: lc.approve(i), State.REJECTED, "it is 'rejected'"),
    ],
)
def test_illegal_transitions_name_the_current_state(action, state, message):
    with pytest.raises(IllegalTransition, match=message):
        action(Invoice("INV-1", state, received_on=D("2026-03-02")))


def test_an_invoice_is_interrupted_once_only():
    invoice = lc.interrupt(validated(), D("2026-03-05"), "missing", ["bank details"])
    invoice = lc.complete(invoice, D("2026-03-06"))
    invoice = lc.record_service_done(invoice, D("2026-03-07"))
    with pytest.raises(IllegalTransition, match="R2192-27 allows one interruption"):
        lc.interrupt(invoice, D("2026-03-08"), "again", ["other"])


@pytest.mark.parametrize(("reason", "items"), [("", ["x"]), ("why", []), ("why", ["  "])])
def test_an_interruption_states_its_reason_and_missing_pieces(reason, items):
    with pytest.raises(IllegalTransition, match="R2192-28"):
        lc.interrupt(validated(), D("2026-03-05"), reason, items)


def test_a_refusal_needs_a_reason_and_maps_to_210():
    with pytest.raises(IllegalTransition, match="reason"):
        lc.refuse(validated(), " ")
    refused = lc.refuse(validated(), "goods not ordered")
    assert lc.PUBLIC_STATUS[refused.state].lifecycle_code == 210


def test_completion_cannot_precede_the_interruption():
    invoice = lc.interrupt(validated(), D("2026-03-05"), "missing", ["bank details"])
    with pytest.raises(IllegalTransition, match="before its interruption"):
        lc.complete(invoice, D("2026-03-04"))


def test_every_state_has_a_public_status():
    assert set(lc.PUBLIC_STATUS) == set(State)
