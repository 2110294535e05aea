-- format: time_series
-- columns: time:time, left_force_n:num, right_force_n:num, asi_pct:num, weaker_side:text
-- Per session: mean concentric force of each leg (v_session_sides, from its valid reps) and
-- the session's asymmetry index (positive = right stronger), the weaker side named.
SELECT s.start_time AS "time", y.mean_left_force_n AS left_force_n,
       y.mean_right_force_n AS right_force_n, s.mean_asi_pct AS asi_pct, y.weaker_side
FROM v_sessions AS s
JOIN v_session_sides AS y ON y.session_id = s.session_id
WHERE s.patient_id = '$patient' AND $__timeFilter(s.start_time)
ORDER BY 1
