"""Payments service: payment orders, execution, late-payment interest."""
