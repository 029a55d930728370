"""Deployment of the hub's apps (Hugging Face Spaces). It may import ``apps`` and ``core``; neither imports it."""
