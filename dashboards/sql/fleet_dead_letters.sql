-- format: time_series
-- columns: time:time, metric:text, dead_letters:num
-- Dead letters are not per clinic. The view is already daily: no time-group macro (with
-- timescaledb: true Grafana would emit time_bucket(), which the roles' search_path must
-- then reach, see docs/dashboards.md).
SELECT day AS "time", source || ': ' || reason AS metric, sum(dead_letters) AS dead_letters
FROM v_dead_letters_daily
WHERE $__timeFilter(day)
GROUP BY 1, 2
ORDER BY 1, 2
