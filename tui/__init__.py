"""The Textual trading console (``python -m tui``). Talks only to Redis and the database."""
