"""MQTT → Kafka bridge: validate every message against the contract, dead-letter the
bad ones, and acknowledge MQTT only after Kafka holds the message.

``core`` holds the pure decisions (routing, acknowledgement order), ``mqtt_in`` the
running bridge, ``kafka_out`` the producer configuration, ``metrics`` the Prometheus
counters and health endpoint, ``cli`` the ``sledfleet bridge`` command.
"""
