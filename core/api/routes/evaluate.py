"""``POST /v1/lattices/{name}/evaluate``: retrieval quality (recall@k, MRR, nDCG with bootstrap
intervals) of a question set, as ``python -m core eval`` measures it. Read only."""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends

from core.access import Actor
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.schemas import AUTH_ERRORS, MAX_QUESTIONS, NOT_FOUND, EvaluateIn, EvaluateOut
from core.api.security import current_actor
from core.engine import apply_settings
from core.errors import ValidationError
from core.evaluation import corpus_from_store, evaluate, question_set

router = APIRouter(prefix="/v1/lattices/{name}", tags=["evaluate"], responses={**AUTH_ERRORS, **NOT_FOUND})


def parse_jsonl(text: str) -> Any:
    """The question set of a JSONL text (blank lines skipped; errors name the line)."""
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise ValidationError("questions", f"line {line}: not a JSON object ({exc.msg})") from None
        if len(rows) > MAX_QUESTIONS:
            raise ValidationError("questions", f"more than {MAX_QUESTIONS} questions in one request; split the set "
                                               "(or run `python -m core eval` on the server)")
    return question_set(rows, source="questions")


@router.post("/evaluate", response_model=EvaluateOut, summary="measure retrieval quality on a question set")
def evaluate_set(name: str, body: EvaluateIn, ctx: ApiContext = Depends(context),
                 actor: Actor = Depends(current_actor)) -> Any:
    questions = parse_jsonl(body.questions)
    corpus = corpus_from_store(ctx.store, name)
    params = apply_settings(corpus.params, body.settings) if body.settings else corpus.params
    rankers = list(dict.fromkeys(body.rankers))
    results = evaluate(corpus, questions, [(r, r, params) for r in rankers], ks=body.k, seed=body.seed,
                       explain=False)
    return plain({"lattice": name, "questions": len(questions), "questions_sha256": questions.sha256,
                  "answerable": len(questions) - results[0].report.unanswerable, "seed": body.seed,
                  "params": params.to_dict(), "overall": results[0].report.to_dict()["overall"],
                  "rankers": {r.label: r.report.to_dict() for r in results}})
