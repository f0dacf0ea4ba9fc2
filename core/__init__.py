"""Shared code for the 64-bit side and the engine: protocol, configuration, Redis helpers, writer."""
