"""Pure AQL builders: no I/O. Every value that reaches AQL goes through `app.aql.literals`."""
