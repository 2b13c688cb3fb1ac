"""The replay-and-judge loop: one logged prompt in, one row of counterfactual labels out.

For each sampled prompt the target models are ``--candidates`` or the row's own logged
candidates. The served model keeps its logged feedback when it has one (a user's rating
is a better label than a judge's); every other target is replayed the prompt as one user
message, and its answer scored by the judge. Both calls go through the gateway with a
concrete model name, so they are authenticated, rate-limited, charged and logged like
any traffic. Each call's cost is the gateway's ``x-routeiq-cost`` header (what it
charged, from the config's prices); a server that sends none is priced from the answer's
``usage`` times ``prices`` ($ per token), and a call neither prices fails the run rather
than spend unmeasured money.

A row is written when at least one judged score came back. A failed replay or judge
call, or an unusable verdict (``judge.parse_score``), skips that one score and is
counted; a row the budget cut short is dropped (a partial row would read as if the
missing models had not been candidates). What stops the run: the budget (``budget``),
a refused key, or an unreachable gateway (``LabelError``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from app.label.budget import Budget
from app.label.judge import judge_messages, parse_score
from app.label.sampling import LabelError, LoggedPrompt

COST_HEADER = "x-routeiq-cost"
JUDGE = "judge"
"""The budget's kind for judge calls (a model replayed is its own kind)."""


@dataclass(frozen=True)
class LabelPlan:
    judge: str
    rubric: str
    models: tuple[str, ...] | None = None
    """Models to label; None: each row's logged candidates."""
    max_tokens: int = 512
    judge_max_tokens: int = 256
    concurrency: int = 4


@dataclass
class Tally:
    rows: int = 0
    scores: int = 0
    calls: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self, budget: Budget) -> str:
        why = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.skipped.items())) or "none"
        stop = "; stopped by the budget" if budget.exhausted else ""
        return (f"labelled {self.rows} rows ({self.scores} judged scores), {self.calls} calls, "
                f"${budget.spent:.6f} of ${budget.cap:g}{stop}; skipped: {why}")


class _OutOfBudget(Exception):
    """The next call does not fit the budget: the row is dropped."""


class Labeller:
    """Labels prompts through ``client`` (an ``openai.AsyncOpenAI`` pointed at the gateway)."""

    def __init__(self, client: openai.AsyncOpenAI, plan: LabelPlan, budget: Budget,
                 prices: dict[str, tuple[float, float]] | None = None) -> None:
        self._client = client
        self._plan = plan
        self.budget = budget
        self._prices = prices or {}
        self.tally = Tally()
        self._probe = asyncio.Lock()

    async def label(self, prompts: list[LoggedPrompt], write: Callable[[dict[str, Any]], None],
                    advance: Callable[[], None] = lambda: None) -> Tally:
        """Label ``prompts`` with ``plan.concurrency`` rows in flight; ``write`` each finished row."""
        todo = iter(prompts)
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(max(1, self._plan.concurrency)):
                    tg.create_task(self._worker(todo, write, advance))
        except ExceptionGroup as group:  # a fatal error cancelled the other workers
            raise group.exceptions[0] from None
        return self.tally

    async def _worker(self, todo: Iterator[LoggedPrompt], write: Callable[[dict[str, Any]], None],
                      advance: Callable[[], None]) -> None:
        for prompt in todo:  # shared: each worker takes the next prompt
            if self.budget.exhausted:
                return
            row = await self._row(prompt)
            if row is not None:
                write(row)
                self.tally.rows += 1
            advance()

    async def _row(self, prompt: LoggedPrompt) -> dict[str, Any] | None:
        targets = self._plan.models or prompt.candidates
        scores: dict[str, float] = {}
        if prompt.feedback is not None and prompt.served in targets and 0.0 <= prompt.feedback <= 1.0:
            scores[prompt.served] = prompt.feedback
        to_replay = [m for m in targets if m not in scores]
        if not to_replay:  # no candidates logged, or only the rated served model
            self.tally.skipped["nothing_to_replay"] += 1
            return None
        judged = 0
        for model in to_replay:
            try:
                score = await self._score(prompt.query, model)
            except _OutOfBudget:
                self.tally.skipped["cut_by_budget"] += 1
                return None
            if score is not None:
                scores[model] = score
                judged += 1
        if not judged:
            return None
        self.tally.scores += judged
        return {"query": prompt.query, "scores": scores}

    async def _score(self, query: str, model: str) -> float | None:
        """``model``'s answer to ``query``, judged; None (counted) when either call fails."""
        answer = await self._call(model, model, [{"role": "user", "content": query}], self._plan.max_tokens)
        if answer is None:
            self.tally.skipped["replay_failed"] += 1
            return None
        messages = judge_messages(self._plan.rubric, query, answer)
        verdict = await self._call(JUDGE, self._plan.judge, messages, self._plan.judge_max_tokens)
        if verdict is None:
            self.tally.skipped["judge_failed"] += 1
            return None
        score = parse_score(verdict)
        if score is None:
            self.tally.skipped["unparseable_verdict"] += 1
        return score

    async def _call(self, kind: str, model: str, messages: list[dict[str, str]], max_tokens: int) -> str | None:
        """One chat completion within the budget: its text, or None when the gateway refused it.

        Until one call has settled, nothing estimates a cost: calls then go one at a time, so
        that concurrency cannot start several unpriced calls at once."""
        if not self.budget.priced:
            async with self._probe:
                if not self.budget.priced:
                    return await self._paid(kind, model, messages, max_tokens)
        return await self._paid(kind, model, messages, max_tokens)

    async def _paid(self, kind: str, model: str, messages: list[dict[str, str]], max_tokens: int) -> str | None:
        reserved = self.budget.reserve(kind)
        if reserved is None:
            raise _OutOfBudget
        cost: float | None = None
        self.tally.calls += 1
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=0)  # type: ignore[arg-type]
            completion = raw.parse()
            cost = self._cost(model, raw.headers.get(COST_HEADER), completion.usage)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise LabelError(f"the gateway refused the key ({err.status_code}): {_message(err)}") from None
        except openai.APITimeoutError:
            return None
        except openai.APIConnectionError as err:
            raise LabelError(f"cannot reach the gateway: {err.__cause__ or err}") from None
        except openai.APIStatusError:
            return None
        finally:
            self.budget.settle(kind, reserved, cost)
        return (completion.choices[0].message.content or "") if completion.choices else ""

    def _cost(self, model: str, header: str | None, usage: Any) -> float:
        if header is not None:
            try:
                return float(header)
            except ValueError:
                pass
        price = self._prices.get(model)
        if price is None or usage is None:
            raise LabelError(f"no cost for a call of {model}: the gateway sent no {COST_HEADER} header and "
                             "--prices does not price it")
        return float(usage.prompt_tokens * price[0] + usage.completion_tokens * price[1])


def _message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(err.message)
