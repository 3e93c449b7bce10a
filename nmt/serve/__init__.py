"""``nmt serve``: trained models behind an HTTP API (LibreTranslate- and OpenNMT-compatible, plus nmt's own
n-best, attention, gates and scoring) with dynamic batching, and a page that shows what the model did."""
