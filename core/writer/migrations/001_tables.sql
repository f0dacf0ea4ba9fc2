-- The event tables. Every row carries the envelope's identity (run, seq) and its time (ts);
-- the unique keys make every insert idempotent (ON CONFLICT DO NOTHING), so a batch that is
-- written twice lands once. Tables that may become hypertables (quotes, positions, account,
-- engine_logs, engine_status) include ts in their key, as TimescaleDB requires.

CREATE TABLE IF NOT EXISTS quotes (
    ts          timestamptz NOT NULL,  -- envelope ts + i microseconds (keeps batch order)
    run         text        NOT NULL,
    seq         bigint      NOT NULL,
    i           integer     NOT NULL,  -- index of the item in a batched "quotes" envelope
    code        text        NOT NULL,
    price       bigint      NOT NULL,
    change      bigint      NOT NULL DEFAULT 0,
    change_pct  double precision NOT NULL DEFAULT 0,
    volume      bigint      NOT NULL DEFAULT 0,  -- cumulative shares
    trade_qty   bigint      NOT NULL DEFAULT 0,  -- this trade; negative when sell-initiated
    open        bigint      NOT NULL DEFAULT 0,
    high        bigint      NOT NULL DEFAULT 0,
    low         bigint      NOT NULL DEFAULT 0,
    ask         bigint      NOT NULL DEFAULT 0,
    bid         bigint      NOT NULL DEFAULT 0,
    exch_time   text        NOT NULL DEFAULT '',  -- exchange time HHMMSS
    PRIMARY KEY (run, seq, i, ts)
);
CREATE INDEX IF NOT EXISTS quotes_code_ts ON quotes (code, ts DESC);

CREATE TABLE IF NOT EXISTS orders (
    ts              timestamptz NOT NULL,
    run             text        NOT NULL,
    seq             bigint      NOT NULL,
    order_id        text        NOT NULL,
    cmd_id          text        NOT NULL DEFAULT '',
    code            text        NOT NULL,
    name            text        NOT NULL DEFAULT '',
    side            text        NOT NULL,
    kind            text        NOT NULL DEFAULT 'limit',
    qty             bigint      NOT NULL,
    price           bigint      NOT NULL DEFAULT 0,
    filled_qty      bigint      NOT NULL DEFAULT 0,
    avg_fill_price  bigint      NOT NULL DEFAULT 0,
    remaining_qty   bigint      NOT NULL DEFAULT 0,
    status          text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    orig_order_id   text        NOT NULL DEFAULT '',
    created_at      timestamptz,
    updated_at      timestamptz,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS orders_ts ON orders (ts DESC);
CREATE INDEX IF NOT EXISTS orders_order_id ON orders (order_id, ts DESC);

CREATE TABLE IF NOT EXISTS fills (
    ts        timestamptz NOT NULL,
    run       text        NOT NULL,
    seq       bigint      NOT NULL,
    fill_id   text        NOT NULL,
    order_id  text        NOT NULL,
    code      text        NOT NULL,
    side      text        NOT NULL,
    qty       bigint      NOT NULL,
    price     bigint      NOT NULL,
    fee       bigint      NOT NULL DEFAULT 0,
    tax       bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS fills_ts ON fills (ts DESC);

CREATE TABLE IF NOT EXISTS positions (
    ts                  timestamptz NOT NULL,
    run                 text        NOT NULL,
    seq                 bigint      NOT NULL,
    code                text        NOT NULL,
    name                text        NOT NULL DEFAULT '',
    qty                 bigint      NOT NULL,
    avg_price           bigint      NOT NULL DEFAULT 0,
    last_price          bigint      NOT NULL DEFAULT 0,
    unrealized_pnl      bigint      NOT NULL DEFAULT 0,
    unrealized_pnl_pct  double precision NOT NULL DEFAULT 0,
    realized_pnl        bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (run, seq, ts)
);

CREATE TABLE IF NOT EXISTS account (
    ts                  timestamptz NOT NULL,
    run                 text        NOT NULL,
    seq                 bigint      NOT NULL,
    account             text        NOT NULL DEFAULT '',  -- masked, e.g. 8012****11
    cash                bigint      NOT NULL DEFAULT 0,
    orderable           bigint      NOT NULL DEFAULT 0,
    equity              bigint      NOT NULL DEFAULT 0,
    realized_pnl_today  bigint      NOT NULL DEFAULT 0,
    unrealized_pnl      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (run, seq, ts)
);

CREATE TABLE IF NOT EXISTS surge_alerts (
    ts            timestamptz NOT NULL,
    run           text        NOT NULL,
    seq           bigint      NOT NULL,
    code          text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    price         bigint      NOT NULL,
    change_pct    double precision NOT NULL,
    volume_ratio  double precision NOT NULL,
    window_s      integer     NOT NULL,
    reason        text        NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS surge_alerts_ts ON surge_alerts (ts DESC);

-- Every reply: the audit trail of what was asked and what was answered.
CREATE TABLE IF NOT EXISTS commands (
    ts             timestamptz NOT NULL,
    run            text        NOT NULL,
    seq            bigint      NOT NULL,
    cmd_id         text        NOT NULL DEFAULT '',
    cmd            text        NOT NULL DEFAULT '',
    ok             boolean     NOT NULL,
    error_code     text        NOT NULL DEFAULT '',
    error_message  text        NOT NULL DEFAULT '',
    replied_at     timestamptz,
    result         jsonb,
    reply          jsonb       NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS commands_ts ON commands (ts DESC);
CREATE INDEX IF NOT EXISTS commands_cmd_id ON commands (cmd_id);

CREATE TABLE IF NOT EXISTS engine_logs (
    ts       timestamptz NOT NULL,
    run      text        NOT NULL,
    seq      bigint      NOT NULL,
    level    text        NOT NULL,
    logger   text        NOT NULL,
    message  text        NOT NULL,
    PRIMARY KEY (run, seq, ts)
);

-- "status" envelopes: the engine's P:engine hash at each change of state.
CREATE TABLE IF NOT EXISTS engine_status (
    ts      timestamptz NOT NULL,
    run     text        NOT NULL,
    seq     bigint      NOT NULL,
    state   text        NOT NULL DEFAULT '',
    broker  text        NOT NULL DEFAULT '',
    mode    text        NOT NULL DEFAULT '',
    data    jsonb       NOT NULL,
    PRIMARY KEY (run, seq, ts)
);

-- Stream entries that could not be used (not JSON, unknown type, invalid payload). They are
-- acknowledged like the others, so nothing blocks the stream; the reason says what was wrong.
CREATE TABLE IF NOT EXISTS dead_letters (
    stream_id   text        PRIMARY KEY,  -- the P:events entry id
    noticed_at  timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL,
    run         text,
    seq         bigint,
    raw         text        NOT NULL
);

-- Holes in the history: seq numbers of a run that never reached the writer ("seq"), or stream
-- entries trimmed away before the writer read them ("trimmed").
CREATE TABLE IF NOT EXISTS gaps (
    gap_key            text        PRIMARY KEY,  -- makes recording a gap idempotent
    kind               text        NOT NULL,     -- 'seq' or 'trimmed'
    run                text        NOT NULL DEFAULT '',
    first_missing_seq  bigint,
    last_missing_seq   bigint,
    lost_entries       bigint,
    after_stream_id    text,
    before_stream_id   text,
    noticed_at         timestamptz NOT NULL DEFAULT now(),
    detail             text        NOT NULL DEFAULT ''
);

-- The highest seq written per run, updated in the same transaction as the rows, so seq gap
-- detection survives restarts.
CREATE TABLE IF NOT EXISTS writer_runs (
    run         text        PRIMARY KEY,
    first_seq   bigint      NOT NULL,
    last_seq    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
