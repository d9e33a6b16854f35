"""Shared fixtures: tiny random-weight models (fixtures/models.py) and a real server process
on loopback (fixtures/server.py)."""

pytest_plugins = ["tests.fixtures.models", "tests.fixtures.server"]
