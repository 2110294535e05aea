-- format: time_series
-- columns: time:time, sessions:num, completed_sessions:num, reps:num
SELECT day AS "time", sum(sessions) AS sessions, sum(completed_sessions) AS completed_sessions,
       sum(reps) AS reps
FROM v_clinic_daily
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
GROUP BY day
ORDER BY 1
