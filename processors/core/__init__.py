"""The pure core: no Kafka, no faust. Events in, window partials, rows, counters and
alert transitions out; the job (``processors.job``) and the in-process harness drive it."""
