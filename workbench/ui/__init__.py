"""Streamlit glue: cached resources, error display, progress sinks. No core module imports this."""
