"""Pure routing decisions: functions over frozen data. No I/O, no logging, no clocks."""
