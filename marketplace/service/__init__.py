"""The marketplace service: an indexer that mirrors the contract's events into SQL, a REST API and a dashboard."""
