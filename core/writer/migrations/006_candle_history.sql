-- Past candles fetched with the engine's "history" command (candles events): Kiwoom's
-- opt10081/opt10080 (OCX), ka10081/ka10080 (REST), or the simulator's seeded past.
-- One row per (code, interval, source, bucket): backfilling twice stores nothing new
-- (ON CONFLICT DO NOTHING on that key). core/history.py prefers a broker's rows over the
-- simulator's for the same bucket, and live candles (from quotes) over both.
CREATE TABLE IF NOT EXISTS candle_history (
    ts        timestamptz NOT NULL,  -- when the engine published the candles
    run       text        NOT NULL,
    seq       bigint      NOT NULL,
    code      text        NOT NULL,
    interval  text        NOT NULL,  -- '1d' or '1m'
    source    text        NOT NULL,  -- 'sim', 'kiwoom', 'kiwoom_rest'
    bucket    timestamptz NOT NULL,  -- start of the candle (days: 00:00 KST)
    open      bigint      NOT NULL,
    high      bigint      NOT NULL,
    low       bigint      NOT NULL,
    close     bigint      NOT NULL,
    volume    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (code, interval, source, bucket)
);
