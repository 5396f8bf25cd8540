"""In-memory fakes for tests of single stages (the loopback servers live in bot/offline/)."""
