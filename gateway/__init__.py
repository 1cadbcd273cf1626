"""The authenticated, observable reverse proxy that runs beside Chroma in every task."""
