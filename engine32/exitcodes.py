"""Exit codes of ``python -m engine32`` (documented in docs/windows.md and read by
``python -m engine32 --supervise``)."""

OK = 0  # stopped on SIGINT/SIGTERM (or Ctrl+C): the supervisor stops too
CRASH = 1  # the engine could not start or run; the supervisor restarts it with a backoff
CONFIG = 2  # a bad configuration or flag: restarting would not help
ALREADY_RUNNING = 3  # another engine is alive on the same Redis prefix
#: The broker needs a new process: Kiwoom dropped the session (-106, the daily maintenance
#: disconnect, the 06:50 re-login notice) or a login timed out. The engine answered what it
#: held and flushed its events first. 75 is EX_TEMPFAIL of BSD's sysexits.h ("try again later").
RESTART = 75
