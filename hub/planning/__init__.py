"""Looking ahead: arrival forecasts per 15-minute slot, counters needed, the day's staffing plan, early warning."""
