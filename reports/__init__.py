"""Reports over annotated runs: `attnlens evaluate` (report.md, metrics.json, plots) and
`attnlens findings` (what the runs say about the models), written from their numbers."""
