"""``python -m bench.fleet``: (1) memory estimate vs RSS, (2) readiness overhead."""

from __future__ import annotations

from bench.fleet import estimate, readiness


def main() -> None:
    estimate.run()
    print()
    readiness.run()


if __name__ == "__main__":
    main()
