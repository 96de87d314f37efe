"""compliance: speech-analytics compliance monitoring for financial sales calls."""

__version__ = "0.1.0"
