"""Pure policy: consent, purpose limitation, retention and the per-event decision.

Nothing here imports a broker, a store, a web framework or a metrics registry;
agents, CLI commands and the web app call these functions with typed values.
"""
