"""Stand-ins for what cannot run on Linux: the Kiwoom OpenAPI+ control (:mod:`.kiwoom_control`)."""
