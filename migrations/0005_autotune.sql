-- The resource auto-tuner's durable inputs and memory.
--
-- `metric_samples` keeps the runtime's metrics reports (published on NATS
-- every few seconds) so that a decision's window survives a restart of
-- `weir serve`; rows older than a few hours are pruned by the recorder.
CREATE TABLE metric_samples (
    tenant      text        NOT NULL,
    job         text        NOT NULL,
    at          timestamptz NOT NULL,
    generation  bigint      NOT NULL,
    -- The report as published (docs/metrics.md).
    sample      jsonb       NOT NULL,
    PRIMARY KEY (tenant, job, at, generation)
);
CREATE INDEX metric_samples_by_age ON metric_samples (at);

-- What the tuner remembers of a job between decisions (TunerState), and the
-- last decision with the idempotency key of the workflow step that made it:
-- a step retried after a crash returns that decision instead of deciding
-- again. `seq` serialises decisions (compare-and-set).
CREATE TABLE autotune_state (
    tenant        text        NOT NULL,
    job           text        NOT NULL,
    seq           bigint      NOT NULL,
    state         jsonb       NOT NULL,
    decided_by    text        NOT NULL,
    decision      jsonb       NOT NULL,
    -- The rule last recorded as an `autotune_decided` event: a decision
    -- whose rule and outcome are unchanged is not recorded again.
    recorded_rule text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, job)
);
