-- format: table
-- columns: clinic_id:text, machines_reporting:num, frames:num, frames_missing:num, frames_replayed:num, edge_dropped:num, replayed_reps:num, dropout_samples:num, max_abs_clock_offset_ms:num
-- Per clinic over the range: the latest day's cumulative frame counters, replayed reps and
-- dropout samples summed over the range, the worst clock offset seen.
SELECT clinic_id,
       max(machines_reporting) AS machines_reporting,
       max(frames) AS frames,
       max(frames_missing) AS frames_missing,
       max(frames_replayed) AS frames_replayed,
       max(edge_dropped) AS edge_dropped,
       sum(replayed_reps) AS replayed_reps,
       sum(dropout_samples) AS dropout_samples,
       max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms
FROM v_data_quality
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
GROUP BY clinic_id
ORDER BY clinic_id
