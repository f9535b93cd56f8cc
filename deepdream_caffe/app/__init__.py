"""Programs built on the API: validated run configurations and file-in, file-out pipelines."""
