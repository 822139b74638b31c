"""The service's view of the Kafka cluster: consumer groups, their lag and their assignments."""
