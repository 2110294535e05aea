"""SledFleet stream."""
