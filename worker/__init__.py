"""The GPU worker: `diffeditor worker` runs RQ jobs (worker.jobs.run_edit) on models loaded once.

Only worker processes import this package (and torch); the API never does.
"""
