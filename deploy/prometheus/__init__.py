"""Prometheus scrape config, alert rules and Alertmanager routing (YAML, shipped as package data)."""
