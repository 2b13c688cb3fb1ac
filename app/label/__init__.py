"""``routeiq label``: counterfactual labels for logged prompts, on demand.

A routing log says how the served model did (its feedback) and nothing about the other
candidates. ``routeiq label`` samples logged prompts, replays each to the other candidates
through the gateway, has a judge model (also through the gateway) score every answer
against a rubric, and writes ``{"query", "scores": {model: score}}`` rows that
``routeiq train`` reads, spending at most a budget. Modules:

- ``judge``: the judge's prompt and the parser of its verdict (``SCORE: x``);
- ``sampling``: reading a decision-log export and drawing the rows to label;
- ``budget``: the spending cap, with reservations for calls in flight;
- ``labeller``: the replay-and-judge loop over an injected OpenAI client;
- ``cli``: the command (errors are one line, exit 2).

Nothing here is imported by the serving path; the gateway is reached over HTTP only.
"""
