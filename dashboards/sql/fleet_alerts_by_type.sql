-- format: time_series
-- columns: time:time, metric:text, alerts:num
SELECT day AS "time", rule AS metric, sum(alerts) AS alerts
FROM v_alerts_daily
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
GROUP BY day, rule
ORDER BY 1, 2
