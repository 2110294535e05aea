-- format: table
-- columns: __value:text, __text:text
SELECT clinic_id AS __value, coalesce(name, clinic_id) AS __text
FROM v_clinics
ORDER BY 1
