-- The open invoices as the metrics refresher counts them every few seconds (services/invoices/
-- metrics.py). A partial index holds only the open invoices, however many were paid over the
-- years, and carries every column the aggregate query reads, so that PostgreSQL answers it from
-- the index alone. Its predicate is the exact list written in that query.
CREATE INDEX invoices_open_metrics ON invoices (status, service_done_on, legal_due, target_due, received_at)
    WHERE status IN ('received', 'validated', 'service_done', 'approved', 'payment_ordered', 'completed', 'interrupted');
