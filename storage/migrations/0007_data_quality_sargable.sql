-- v_data_quality, same columns, rewritten so a filter on day / clinic_id reaches the
-- aggregates' indexes: no FULL JOIN (quals do not cross it), grouping on the same date_bin
-- expression the new expression indexes hold (date_bin is immutable).

CREATE INDEX agg_machine_status_hourly_clinic_day_idx ON sledfleet.agg_machine_status_hourly
    (clinic_id, date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'));
CREATE INDEX agg_machine_hourly_clinic_day_idx ON sledfleet.agg_machine_hourly
    (clinic_id, date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'));

CREATE OR REPLACE VIEW sledfleet.v_data_quality AS
SELECT day, clinic_id,
       count(*) FILTER (WHERE has_status) AS machines_reporting,
       coalesce(sum(frames), 0)::bigint AS frames,
       coalesce(sum(frames_missing), 0)::bigint AS frames_missing,
       coalesce(sum(frames_replayed), 0)::bigint AS frames_replayed,
       coalesce(sum(frames_duplicate), 0)::bigint AS frames_duplicate,
       coalesce(sum(edge_dropped), 0)::bigint AS edge_dropped,
       max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms,
       coalesce(sum(reps), 0)::bigint AS reps,
       coalesce(sum(replayed_reps), 0)::bigint AS replayed_reps,
       coalesce(sum(dropout_samples), 0)::bigint AS dropout_samples
FROM (
    -- status counters are cumulative per machine: the day's highest value per machine
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS day,
           clinic_id, machine_id, true AS has_status,
           max(frames) AS frames, max(frames_missing) AS frames_missing,
           max(frames_replayed) AS frames_replayed, max(frames_duplicate) AS frames_duplicate,
           max(edge_dropped) AS edge_dropped,
           max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms,
           NULL::bigint AS reps, NULL::bigint AS replayed_reps, NULL::bigint AS dropout_samples
    FROM sledfleet.agg_machine_status_hourly
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
           clinic_id, machine_id, false,
           NULL, NULL, NULL, NULL, NULL, NULL,
           sum(reps)::bigint, sum(replayed_reps)::bigint, sum(dropout_samples)::bigint
    FROM sledfleet.agg_machine_hourly
    GROUP BY 1, 2, 3
) per_machine
GROUP BY day, clinic_id;
