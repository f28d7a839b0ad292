"""Fixtures of the witness tests."""

from tests.support.tlog import tlog_rig  # noqa: F401
