"""End-to-end tests: real daemons as separate processes over real TLS."""
