"""The device's uplink: MQTT v5 QoS 1 publishing from the durable outbox."""
