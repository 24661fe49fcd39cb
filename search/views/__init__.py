"""Dashboard pages about search, one module per page: search (and judge), evaluation, clusters,
duplicates. Thin views over the services and selectors; roles from `omi_memory.roles`."""
