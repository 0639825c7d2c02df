"""Generators: turn chat messages into text, measured by the shared base class."""

from .base import Generator

__all__ = ["Generator"]
