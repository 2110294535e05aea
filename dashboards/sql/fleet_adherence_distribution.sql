-- format: table
-- columns: clinic_id:text, iso_week:text, patients:num, below_50:num, from_50_to_75:num, from_75_to_100:num, at_or_above_100:num, mean_rolling4_adherence:num
-- Latest ISO week up to the end of the range, per clinic: patients per band of weekly
-- adherence (no per-patient rows reach the operations role).
SELECT DISTINCT ON (clinic_id)
       clinic_id, iso_week, patients,
       patients_below_50 AS below_50,
       patients_50_to_75 AS from_50_to_75,
       patients_75_to_100 AS from_75_to_100,
       patients_at_100 AS at_or_above_100,
       mean_rolling4_adherence
FROM v_clinic_adherence
WHERE clinic_id IN ($clinic) AND week_start <= $__timeTo()::date
ORDER BY clinic_id, week_start DESC
