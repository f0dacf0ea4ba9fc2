"""The writer's database fixtures (a fresh schema per test on the real servers)."""

from tests.writer.conftest import keys, pg, rconn  # noqa: F401 - pytest fixtures
