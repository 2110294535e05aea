-- format: time_series
-- columns: time:timegroup, metric:text, dead_letters:num
-- Dead letters are not per clinic. Grafana's time-group macro buckets the daily view
-- (time_bucket on TimescaleDB, epoch arithmetic otherwise: the same UTC days).
SELECT $__timeGroupAlias(day, '1d'), source || ': ' || reason AS metric,
       sum(dead_letters) AS dead_letters
FROM v_dead_letters_daily
WHERE $__timeFilter(day)
GROUP BY 1, 2
ORDER BY 1, 2
