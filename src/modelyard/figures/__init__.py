"""Per-request figures: what the gateway records of each request, counted and stored.

Dependencies point down the list:

    service.py      the Figures service: records, snapshots, history, the flush task
    exposition.py   one scrape as Prometheus text (prometheus_client, imported on a scrape)
    request_log.py  the JSONL request log, rotated by size
    aggregate.py    counters, reservoirs and histograms for one key
    record.py       one finished request, its kind and outcome, the token-count parsers

Nothing here knows HTTP, the gateway, the fleet or FastAPI: the gateway records into the
service, and the routes that serve the figures are in ``modelyard.api``.
"""
