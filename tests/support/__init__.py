"""Helpers and fixtures shared by more than one test folder (registered in tests/conftest.py)."""
