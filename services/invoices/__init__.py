"""Invoices service: intake, validation, deadline clock, approval workflow."""
