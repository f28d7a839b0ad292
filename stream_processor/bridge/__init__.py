"""Bridge MQTT → Kafka: at-least-once, validated, dead-lettered, identity-checked."""
