"""Telemetry: the Prometheus metric objects every layer may record into.

Low in the layering (just above ``protocol``, beside ``config``) so that the
spool, the server and the client record without importing the console,
which only exposes :data:`~concentrador.telemetry.metrics.REGISTRY`.
"""
