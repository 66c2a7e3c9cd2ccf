"""Advances service: contracts, the doubled advance and its recovery on invoices."""
