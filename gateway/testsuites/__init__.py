"""Prompt test suites: cases, scored test runs through the gateway's own request path,
comparison and the promotion gate, schedules and degradation alerts.

`cases` and `suite_io` keep the suite; `planning` checks and prices a run and holds its
budget; `engine` runs it (one case at a time per slot, retried, scored), `supervisor` resumes
runs whose process died; `compare` diffs two runs; `schedules` and `scheduler` fire runs on
cron expressions; `degradation` raises alerts; `plugin` wires it into the app.
"""
