-- Issue 12: the venue of orders and fills (KRX | NXT | SOR), see docs/market-hours.md.
-- Rows written before this migration traded on KRX, the only venue the engine knew.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE fills ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
