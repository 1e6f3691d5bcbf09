-- Workflow runs are ordinary event streams (`run.<uuid>`, kind `run`). Their
-- leases and timers live in the run's events and, folded, in its snapshot
-- (`due_at`, `lease_owner`), which the event store writes in the same
-- transaction as the events. Engine replicas find due runs with one query;
-- this partial index keeps it to the runs still in progress.
CREATE INDEX streams_active_runs ON streams (((snapshot->>'due_at')))
    WHERE kind = 'run' AND snapshot->>'status' = 'running';
