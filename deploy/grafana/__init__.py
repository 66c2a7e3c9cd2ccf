"""Grafana dashboards generated from code (generator.py) and their provisioning files."""
