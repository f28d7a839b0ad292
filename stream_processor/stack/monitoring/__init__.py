"""The local stack's monitoring: Prometheus with a generated scrape config
(``prometheus``) and its settings (``settings``)."""
