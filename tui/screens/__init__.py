"""Screens of the console: main, order ticket, confirm, chart, help."""
