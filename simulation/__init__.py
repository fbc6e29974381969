"""The capacity and disaster-recovery models (installed as `egovlab.simulation`): a SimPy engine
validated against queueing theory, the province model, the peak-hour and yearly runs, DR, sizing."""
