"""SledFleet storage."""
