"""The dev console: a local stand-in for IBM QRadar (REST API, AQL engine, DSM-style ingestion, offenses,
and the console's app pages). A development and test tool; never part of the app zip."""
