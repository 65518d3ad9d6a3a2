"""Run workers: the Celery app, the run engine that persists the executor, and its tasks."""
