-- format: time_series
-- columns: time:time, metric:text, online_fraction:num
SELECT hour AS "time", machine_id AS metric,
       online_reports::double precision / nullif(reports, 0) AS online_fraction
FROM v_machine_status_hourly
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine) AND $__timeFilter(hour)
ORDER BY 1, 2
