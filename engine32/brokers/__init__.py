"""Broker adapters behind one contract (:mod:`engine32.brokers.base`)."""
