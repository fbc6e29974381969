"""Scenario test suites: the file format, predictions from the model, the runner and its reports."""
