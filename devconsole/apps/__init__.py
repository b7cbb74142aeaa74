"""Installing app zips the way QRadar does (see `devconsole.apps.installer`); the API is
`devconsole.server.apps`, the client `python -m devconsole.apps.deploy`."""
