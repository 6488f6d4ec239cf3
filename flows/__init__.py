"""Prefect flows chaining the tasks of ``tasks/``, and the ``dataswarms`` command line."""
