"""The runtime platform: what a running cloud process needs to find and use the brokers.

Client settings (``settings``: ``BrokerSettings``, ``Topics``), Kafka topics and
their configs (``topics``), the ledger reader/writer (``ledger_client``), MQTT
accounts and the device registry (``accounts``, ``devices``), the state layout
(``layout``), the project CA (``tls``), the host's Debian packages
(``system``), the Faust settings the stream workers share (``workers``) and the
pipeline's status seen from outside (``status``).
``stack/`` (local brokers) and ``cli/`` build on this package; nothing here
imports either of them, nor any process package (``tests/test_layout.py``).
"""
