"""SledFleet dashboards."""
