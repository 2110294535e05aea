-- format: time_series
-- columns: time:time, e1rm_kg:num, e1rm_low_kg:num, e1rm_high_kg:num, estimates:num
-- Weekly mean of the sessions' e1RM estimates with a band of one standard deviation,
-- never narrower than E1RM_MIN_REL_UNCERTAINTY of the mean (published error 7.5-30 %).
SELECT "time", e1rm_kg, e1rm_kg - half_band AS e1rm_low_kg, e1rm_kg + half_band AS e1rm_high_kg,
       estimates
FROM (
    SELECT date_bin(INTERVAL '7 days', start_time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS "time",
           avg(e1rm_kg) AS e1rm_kg,
           greatest(coalesce(stddev_samp(e1rm_kg), 0),
                    {{E1RM_MIN_REL_UNCERTAINTY}} * avg(e1rm_kg)) AS half_band,
           count(*) AS estimates
    FROM v_sessions
    WHERE patient_id = '$patient' AND $__timeFilter(start_time) AND e1rm_kg IS NOT NULL
    GROUP BY 1
) AS weekly
ORDER BY 1
