"""Fleet tests: real processes on 127.0.0.1 (the fake backend and llama-server)."""
