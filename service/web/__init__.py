"""The web surface: tracking endpoints, the SendGrid webhook, health and metrics (FastAPI)."""
