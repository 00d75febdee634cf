"""The market: device contracts, escrow, pay-per-use billing and reviews (issue #17, docs/market.md)."""
