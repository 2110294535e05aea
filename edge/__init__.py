"""SledFleet edge."""
