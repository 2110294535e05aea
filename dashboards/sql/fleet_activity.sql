-- format: table
-- columns: sessions_today:num, reps_today:num, sessions_this_week:num, reps_this_week:num
-- Today and this ISO week (UTC) as of the end of the range.
SELECT coalesce(sum(sessions) FILTER (
           WHERE day >= date_trunc('day', $__timeTo()::timestamptz, 'UTC')), 0) AS sessions_today,
       coalesce(sum(reps) FILTER (
           WHERE day >= date_trunc('day', $__timeTo()::timestamptz, 'UTC')), 0) AS reps_today,
       coalesce(sum(sessions), 0) AS sessions_this_week,
       coalesce(sum(reps), 0) AS reps_this_week
FROM v_clinic_daily
WHERE clinic_id IN ($clinic)
  AND day >= date_trunc('week', $__timeTo()::timestamptz, 'UTC')
  AND day <= $__timeTo()
