"""The local stack: Apache Kafka (KRaft), Prometheus, Alertmanager and Ripple's own processes,
started in the background on loopback, with their state under one directory."""
