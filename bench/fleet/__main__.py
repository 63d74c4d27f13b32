"""``python -m bench.fleet``: (1) memory estimate vs RSS, (2) readiness overhead, (3) swap
time (vLLM sleep/wake against stop/start)."""

from __future__ import annotations

from bench.fleet import estimate, readiness, swap


def main() -> None:
    estimate.run()
    print()
    readiness.run()
    print()
    swap.run()


if __name__ == "__main__":
    main()
