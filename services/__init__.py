"""The e-gov services that run on the emulated hosts (FastAPI + PostgreSQL + Prometheus)."""
