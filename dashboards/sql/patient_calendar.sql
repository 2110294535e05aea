-- format: time_series
-- columns: time:time, sessions:num, as_prescribed:num
-- Sessions per day of the clinic's calendar (v_session_compliance.local_date), and how many
-- of them were completed as prescribed.
SELECT local_date::timestamp AT TIME ZONE time_zone AS "time", count(*) AS sessions,
       count(*) FILTER (WHERE as_prescribed) AS as_prescribed
FROM v_session_compliance
WHERE patient_id = '$patient' AND $__timeFilter(start_time)
GROUP BY local_date, time_zone
ORDER BY 1
