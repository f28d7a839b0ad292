"""Bridge tests: at-least-once, validation, identity, TLS, scale, downlink."""
