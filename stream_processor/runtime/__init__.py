"""The runtime platform: what a running cloud process needs to find and use the brokers.

Kafka topics and their configs (``topics``), client settings (``settings``),
MQTT accounts and the device registry (``accounts``, ``devices``), the state
layout (``layout``) and the project CA (``tls``). ``stack/`` (local brokers)
and ``cli/`` build on this package; nothing here imports either of them.
"""
