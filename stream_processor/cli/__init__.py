"""The ``facegate`` command line: one group per component, loaded on demand."""
