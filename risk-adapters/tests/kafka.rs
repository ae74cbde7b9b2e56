//! Kafka tests.
