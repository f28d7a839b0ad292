"""Faust workers: decode, enforce, store."""
