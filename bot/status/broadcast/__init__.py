"""The broadcast engine: an outbox worker that sends status messages paced to the platforms' limits."""
