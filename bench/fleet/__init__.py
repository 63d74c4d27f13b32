"""Fleet benchmarks: memory estimate against measured RSS, readiness overhead."""
