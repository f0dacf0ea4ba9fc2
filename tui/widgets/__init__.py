"""Widgets of the console: the Line-API tables and the status lines."""
