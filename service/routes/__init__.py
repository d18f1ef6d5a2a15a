"""Thin route modules: parse, authorize, call `capstone`, shape the answer."""
