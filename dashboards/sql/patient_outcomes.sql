-- format: time_series
-- columns: time:time, metric:text, value:num
SELECT measured_at AS "time",
       CASE test
           WHEN 't25fw' THEN 'T25FW (s)'
           WHEN '5sts' THEN '5STS (s)'
           WHEN '6mw' THEN '6MW (m)'
           ELSE 'MSWS-12'
       END AS metric,
       value
FROM v_outcomes
WHERE patient_id = '$patient' AND $__timeFilter(measured_at)
ORDER BY 1, 2
