-- Compression (columnstore) and retention. TimescaleDB: policies run by its job scheduler
-- (`CALL run_job(id)` runs one now). Plain PostgreSQL: `sledfleet db maintain` (and the sink,
-- periodically) drops partitions older than sledfleet.partitioning.retention; no compression.
--
-- Chunks are compressed once late data is unlikely: training facts after 90 days (the
-- stream may re-emit a session's records within days; adherence windows span 4 weeks),
-- machine status after 7 days, raw frames after 1 day. Segmenting by the column the
-- dashboards filter on keeps per-patient and per-machine reads cheap.

-- [timescale]
ALTER TABLE sledfleet.reps SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE sledfleet.sets SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE sledfleet.sessions SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'clinic_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE sledfleet.machine_status SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE sledfleet.machine_events SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE sledfleet.frames SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'ts DESC');

SELECT add_compression_policy('sledfleet.reps', INTERVAL '90 days');
SELECT add_compression_policy('sledfleet.sets', INTERVAL '90 days');
SELECT add_compression_policy('sledfleet.sessions', INTERVAL '90 days');
SELECT add_compression_policy('sledfleet.machine_events', INTERVAL '90 days');
SELECT add_compression_policy('sledfleet.machine_status', INTERVAL '7 days');
SELECT add_compression_policy('sledfleet.frames', INTERVAL '1 day');

ALTER MATERIALIZED VIEW sledfleet.agg_machine_hourly SET (timescaledb.compress = true);
ALTER MATERIALIZED VIEW sledfleet.agg_machine_status_hourly SET (timescaledb.compress = true);
SELECT add_compression_policy('sledfleet.agg_machine_hourly', compress_after => INTERVAL '30 days');
SELECT add_compression_policy('sledfleet.agg_machine_status_hourly',
    compress_after => INTERVAL '30 days');

SELECT add_retention_policy('sledfleet.frames', INTERVAL '7 days');
SELECT add_retention_policy('sledfleet.machine_status', INTERVAL '400 days');
-- [end]

-- [postgres]
SELECT 1;  -- nothing to create: retention is sledfleet.drop_expired_partitions()
-- [end]
