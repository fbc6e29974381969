"""The e-gov services that run on the emulated hosts (installed as `egovlab.services`): FastAPI + PostgreSQL + Prometheus."""
