"""TimescaleDB features, used when the server has them and skipped, with a warning, when not.

What is detected (never assumed from the server's name):

- the extension: ``pg_available_extensions`` / ``pg_extension`` (``CREATE EXTENSION`` is tried
  when it is available but not installed);
- the license: ``current_setting('timescaledb.license', true)``. ``timescale`` (the
  Timescale-licensed build) has compression, retention policies and continuous aggregates;
  ``apache`` (the ``-oss`` build) has hypertables only.

Everything here is idempotent: run at every start, it changes nothing the second time, except
that a changed retention period in the config replaces the old policy.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg

log = logging.getLogger(__name__)

#: Hypertables and their chunk interval.
HYPERTABLES: dict[str, str] = {
    "quotes": "1 day",
    "positions": "7 days",
    "account": "7 days",
    "engine_logs": "7 days",
    "engine_status": "30 days",
}

#: Continuous aggregates: name → (bucket expression, refresh start offset, end offset, schedule).
CANDLE_VIEWS: dict[str, tuple[str, str, str, str]] = {
    "candles_1m": ("time_bucket(INTERVAL '1 minute', ts)", "3 days", "1 minute", "1 minute"),
    "candles_1d": (
        "time_bucket(INTERVAL '1 day', ts, 'Asia/Seoul')",
        "7 days",
        "1 hour",
        "1 hour",
    ),
}


@dataclass
class Features:
    """What the server offers, and what this writer set up with it."""

    extension: str = ""  # installed timescaledb version, "" when none
    license: str = ""  # "timescale", "apache" or ""
    hypertables: bool = False
    compression: bool = False
    retention: bool = False
    continuous_aggregates: bool = False
    missing: list[str] = field(default_factory=list)  # one sentence per missing feature

    def summary(self) -> str:
        if not self.extension:
            return "plain PostgreSQL"
        parts = [f"timescaledb {self.extension} ({self.license or 'unknown'} license)"]
        for name in ("hypertables", "compression", "retention", "continuous_aggregates"):
            if getattr(self, name):
                parts.append(name.replace("_", " "))
        return ", ".join(parts)


async def detect(conn: asyncpg.Connection) -> Features:
    """Find out what the server offers; installs the extension when it is available."""
    f = Features()
    available = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    installed = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    )
    if not installed and available:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            installed = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            )
        except asyncpg.PostgresError as exc:
            f.missing.append(
                f"the timescaledb extension is available but could not be installed ({exc}); "
                "history is kept in plain tables"
            )
    if not installed:
        if not f.missing:
            f.missing.append(
                "TimescaleDB is not installed on this server: history is kept in plain "
                "PostgreSQL tables (no hypertables, no compression, no retention, candles are "
                "computed from quotes on every chart request, which is slower on long ranges)"
            )
        return f
    f.extension = installed
    f.license = await _license(conn)
    if not f.license:
        # The library is not loaded yet in this backend (a server that does not preload it,
        # e.g. PGlite started from a saved data directory): load it, then ask again.
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("LOAD 'timescaledb'")
            f.license = await _license(conn)
    return f


async def _license(conn: asyncpg.Connection) -> str:
    value = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return (value or "").lower()


def _timescale_licensed(f: Features) -> bool:
    return f.license == "timescale"


async def apply(
    conn: asyncpg.Connection,
    features: Features,
    retention_days: int = 365,
    compress_after_days: int = 7,
) -> Features:
    """Turn the tables into hypertables and add what the license allows. Logs one warning per
    missing feature, saying what it means for the user. Returns ``features`` filled in."""
    if features.extension:
        for table, chunk in HYPERTABLES.items():
            await conn.execute(
                "SELECT create_hypertable($1::regclass, by_range('ts', $2::text::interval), "
                "if_not_exists => TRUE, migrate_data => TRUE)",
                table,
                chunk,
            )
        features.hypertables = True
        if _timescale_licensed(features):
            steps = (
                (
                    "compression",
                    "quotes take about 10x the disk",
                    lambda: _compression(conn, compress_after_days),
                ),
                (
                    "retention",
                    "old quotes are never dropped; delete them by hand",
                    lambda: _retention(conn, retention_days),
                ),
                (
                    "continuous_aggregates",
                    "candles are computed from quotes on every chart request, slower on long "
                    "ranges",
                    lambda: _candles(conn),
                ),
            )
            for name, meaning, step in steps:
                try:
                    async with conn.transaction():  # a savepoint when inside one
                        await step()
                    setattr(features, name, True)
                except asyncpg.FeatureNotSupportedError as exc:
                    features.missing.append(
                        f"TimescaleDB refused {name.replace('_', ' ')} ({exc}): {meaning}"
                    )
        else:
            features.missing.append(
                f"TimescaleDB here is the {features.license or 'unknown'}-licensed build: no "
                "compression (quotes take about 10x the disk), no retention policy (old quotes "
                "are never dropped; delete them by hand), no continuous aggregates (candles are "
                "computed from quotes on every chart request, slower on long ranges)"
            )
    for sentence in features.missing:
        log.warning("writer: %s", sentence)
    log.info("writer: database features: %s", features.summary())
    return features


async def _compression(conn: asyncpg.Connection, after_days: int) -> None:
    enabled = await conn.fetchval(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = 'quotes' AND hypertable_schema = current_schema()"
    )
    if not enabled:
        await conn.execute(
            "ALTER TABLE quotes SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'code', timescaledb.compress_orderby = 'ts DESC')"
        )
    await conn.execute(
        "SELECT add_compression_policy('quotes', $1::text::interval, if_not_exists => TRUE)",
        f"{after_days} days",
    )


async def _retention(conn: asyncpg.Connection, days: int) -> None:
    current = await conn.fetchval(
        "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = 'quotes' "
        "AND hypertable_schema = current_schema()"
    )
    wanted = f"{days} days"
    if current is not None and (days == 0 or current != wanted):
        await conn.execute("SELECT remove_retention_policy('quotes', if_exists => TRUE)")
        current = None
    if days > 0 and current is None:
        await conn.execute(
            "SELECT add_retention_policy('quotes', $1::text::interval, if_not_exists => TRUE)",
            wanted,
        )


async def _candles(conn: asyncpg.Connection) -> None:
    for view, (bucket, start, end, every) in CANDLE_VIEWS.items():
        await conn.execute(
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {view}
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                SELECT code,
                       {bucket} AS bucket,
                       first(price, ts) AS open,
                       max(price) AS high,
                       min(price) AS low,
                       last(price, ts) AS close,
                       sum(abs(trade_qty))::bigint AS volume,
                       count(*) AS ticks
                FROM quotes
                GROUP BY code, bucket
                WITH NO DATA"""
        )
        await conn.execute(
            f"SELECT add_continuous_aggregate_policy('{view}', "
            "start_offset => $1::text::interval, end_offset => $2::text::interval, "
            "schedule_interval => $3::text::interval, if_not_exists => TRUE)",
            start,
            end,
            every,
        )


async def has_candle_views(conn: asyncpg.Connection) -> bool:
    """True when ``candles_1m`` and ``candles_1d`` exist as continuous aggregates here."""
    ext = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if not ext:
        return False
    n = await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = current_schema() AND view_name = ANY($1::text[])",
        list(CANDLE_VIEWS),
    )
    return n == len(CANDLE_VIEWS)
