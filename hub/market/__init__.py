"""The hub's market: contracts on its devices, rentals, metering, receipts and payment
(docs/market.md). A built-in plugin (``hub.market.plugin``) provides :class:`~hub.market.service.Market`
as the service ``"market"``."""
