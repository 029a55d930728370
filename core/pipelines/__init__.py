"""Multi-step inference procedures that use the models in ``core.models`` (no weights of their own)."""
