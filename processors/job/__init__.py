"""The streaming job: the faust app, the gate runner and the agents that drive the core
(``processors.core``) over Kafka, with their durable state and the topic plan."""
