"""The invoices service's pure rules: no I/O, no clock, no database."""
