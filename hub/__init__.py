"""The hub: fuses every edge box's occupancy with the hall's ticket events into staffing alerts."""
