"""Request and response models of the REST API (pydantic), with examples, so the OpenAPI schema is exact.

One model per request and response body of every route, read together (the OpenAPI document
at /docs is built from them); they share the error and gem shapes.

Requests forbid unknown fields (a misspelt field is a 422 naming it, not silently ignored).
Values are checked here only for their JSON type and obvious bounds; the model's own rules
(parameter ranges, gem state ranges, lattice names) stay in core, which raises the
ValidationError the API maps to 422, so no rule has a second implementation.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000  # gems per POST of a batch
MAX_PAGE = 500  # gems per page of a listing
MAX_K = 1000  # gems a search may return
MAX_QUESTIONS = 2000  # questions of one evaluation request
Setting = Union[float, int, str, bool]  # a parameter value, as for --set (text such as "14d" allowed)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable cause: not_found, conflict, invalid, token_refused, ...",
                      examples=["not_found"])
    message: str = Field(description="what went wrong and what to do", examples=["no gem 'g-1' in lattice 'demo'"])
    field: str | None = Field(None, description="the offending field, when there is one", examples=["k"])
    reason: str | None = Field(None, description="why a token was refused (expired, signature, unknown_kid, "
                                                 "reused, bad_credentials, missing, ...)")
    issues: list[dict[str, Any]] | None = Field(None, description="bad rows of a failed import (file, line, field, "
                                                                  "message)")
    details: list[dict[str, Any]] | None = Field(None, description="every problem of a request that failed "
                                                                   "validation (field, message)")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# ------------------------------------------------------------------ auth
class PasswordGrant(Request):
    grant_type: Literal["password"]
    username: str = Field(min_length=1, max_length=200, examples=["researcher"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])
    audience: str | None = Field(None, max_length=200, description="token audience (default: the REST API)")


class ApiKeyGrant(Request):
    grant_type: Literal["api_key"]
    api_key: str = Field(min_length=1, max_length=1024, description="a program's API key, as shown once at creation")
    audience: str | None = Field(None, max_length=200)


class RefreshGrant(Request):
    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(min_length=1, max_length=8192,
                               description="the refresh token of the last pair (it rotates: each works once)")


TokenRequest = Annotated[Union[PasswordGrant, ApiKeyGrant, RefreshGrant], Field(discriminator="grant_type")]


class TokenResponse(BaseModel):
    access_token: str = Field(description="a signed JWT (EdDSA): send it as `Authorization: Bearer <token>`")
    refresh_token: str = Field(description="exchange it once for a new pair (grant_type=refresh_token)")
    expires_in: int = Field(description="seconds until the access token expires", examples=[900])
    token_type: str = Field("Bearer", examples=["Bearer"])


# ------------------------------------------------------------- lattices
class LatticeOut(BaseModel):
    name: str = Field(examples=["demo"])
    params: dict[str, Any] = Field(description="every parameter (core.engine.PARAM_SPECS)")
    embedder: str = Field(examples=["hashing-v1"])
    dim: int
    time_unit: str = Field(examples=["hour"])
    clock: Literal["manual", "wall"]
    t: float = Field(description="lattice time, in time units")
    version: int = Field(description="bumped by every write: send it back as expected_version")
    gems: int = Field(description="active gems")
    archived: int
    created_at: str
    updated_at: str
    preset: str = Field(examples=["memory"])
    epoch: str | None = Field(None, description="UTC instant of lattice time 0 (ISO 8601)")


class LatticeList(BaseModel):
    items: list[LatticeOut]


class LatticeCreate(Request):
    name: str = Field(min_length=1, max_length=200, examples=["notes"])
    preset: Literal["seed", "memory", "archive"] | None = Field(
        None, description="default: memory for a wall clock, seed for a manual one")
    clock: Literal["manual", "wall"] = "manual"
    embedder: str | None = Field(None, max_length=200, examples=["hashing-v2"],
                                 description="default: hashing-v2 for the memory preset, hashing-v1 otherwise")
    settings: dict[str, Setting] | None = Field(
        None, description="parameters over the preset, as for --set: half_life='14d', k=8, scoring='floor'",
        examples=[{"half_life": "14d", "k": 8}])


class ParamsPatch(Request):
    settings: dict[str, Setting] = Field(description="parameters to change, as for --set (preset= applies a preset "
                                                     "first, half_life='14d' sets lambda_)",
                                         examples=[{"half_life": "7d", "scoring": "floor"}])
    expected_version: int | None = Field(None, ge=1, description="the lattice version you read (409 if it moved)")


class ParamsOut(BaseModel):
    lattice: str
    version: int
    preset: str
    params: dict[str, Any]


# ----------------------------------------------------------------- gems
class GemIn(Request):
    content: str = Field(min_length=1, max_length=200_000, examples=["Kuramoto oscillators synchronise when ..."])
    id: str | None = Field(None, max_length=200, description="default: a generated id")
    title: str = Field("", max_length=1000)
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    source: str = Field("", max_length=2000)
    energy: float | None = Field(None, description="default 1")
    phase: float | None = Field(None, description="radians, default 0")
    coherence: float | None = Field(None, description="in [0, 1], default 1")
    uncertainty: float | None = Field(None, description="in [0, 1], default 0.1")
    created_at: str | float | None = Field(None, description="batch only: ISO 8601 with a zone, or a lattice time; "
                                                             "the gem enters aged to the clock")


class GemBatch(Request):
    gems: list[GemIn] = Field(min_length=1, max_length=MAX_BATCH, description="all or nothing")


class GemPatch(Request):
    expected_version: int | None = Field(None, ge=1, description="the gem's `version` you read (409 if it moved)")
    expected_state_version: int | None = Field(None, ge=1, description="the gem's `state_version` you read")
    title: str | None = Field(None, max_length=1000)
    content: str | None = Field(None, min_length=1, max_length=200_000)
    tags: list[Annotated[str, Field(max_length=200)]] | None = Field(None, max_length=100)
    source: str | None = Field(None, max_length=2000)
    energy: float | None = None
    phase: float | None = None
    coherence: float | None = None
    uncertainty: float | None = None


class GemOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    title: str | None = None
    content: str | None = None
    tags: list[str] | None = None
    source: str | None = None
    energy: float | None = None
    phase: float | None = None
    coherence: float | None = None
    uncertainty: float | None = None
    archived: bool | None = None
    version: int | None = None
    state_version: int | None = None


class GemCreated(BaseModel):
    lattice: str
    ids: list[str] = Field(description="the new gems' ids, in the order sent")
    version: int = Field(description="the lattice version after the write")


class GemPage(BaseModel):
    items: list[GemOut]
    total: int = Field(description="gems matching the filters")
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page (null on the last)")


class ImportOut(BaseModel):
    lattice: str
    source: str
    imported: int
    edges: int
    skipped: list[dict[str, Any]]
    version: int


# -------------------------------------------------------------- queries
class SearchIn(Request):
    question: str = Field(min_length=1, max_length=10_000, examples=["how do oscillators synchronise?"])
    at: str | float | None = Field(None, description="now (default), an ISO 8601 instant with a zone, or a "
                                                     "lattice time; not before the lattice clock",
                                   examples=["now", "2026-03-01T12:00:00Z"])
    k: int | None = Field(None, ge=1, le=MAX_K, description="gems to return (default: the lattice's k)")


class SearchOut(BaseModel):
    lattice: str
    t: float = Field(description="the lattice time ranked at")
    at: str | None = Field(description="that time as a UTC instant")
    clock: str
    gems_in_lattice: int
    scoring: str
    retriever: str = Field(description="what the scoring rule reads as the similarity: similarity or hybrid")
    k: int
    min_score: float
    gems: list[dict[str, Any]] = Field(description="best first: rank, gem_id, title and every score term")
    empty_because: str | None


class ReflectIn(Request):
    question: str = Field(min_length=1, max_length=10_000, examples=["what do I know about synchronisation?"])
    session_id: str = Field("api", min_length=1, max_length=200, description="conversation window to continue")


class ObserveIn(Request):
    gem_ids: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=MAX_BATCH)
    strength: float | None = Field(None, description="observation strength eta in [0, 1] (default: the lattice's)")
    expected_version: int | None = Field(None, ge=1)


class AdvanceIn(Request):
    dt: str | float = Field(description="how far: 14d, 36h, 90min, 1h30min, or a number of lattice time units",
                            examples=["36h", 2.5])
    step: str | float | None = Field(None, description="integration step, same units (default: one step)")
    expected_version: int | None = Field(None, ge=1)


class EvaluateIn(Request):
    questions: str = Field(min_length=1, description="the question set, JSONL (core.evaluation.questions: question, "
                                                     "asked_at, evidence; id, category, scope optional)",
                           examples=['{"question": "Who proposed the model?", "asked_at": 0, "evidence": ["g-1"]}'])
    rankers: list[Literal["lattice", "similarity", "bm25", "langchain", "generative-agents", "memorybank"]] = Field(
        default_factory=lambda: ["lattice"], min_length=1, max_length=6)
    k: list[Annotated[int, Field(ge=1, le=MAX_K)]] = Field(default_factory=lambda: [5, 10], min_length=1,
                                                           max_length=10)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="bootstrap seed")
    settings: dict[str, Setting] | None = Field(None, description="parameter overrides for this evaluation")


class EvaluateOut(BaseModel):
    lattice: str
    questions: int
    questions_sha256: str
    answerable: int
    seed: int
    params: dict[str, Any]
    overall: dict[str, Any]
    rankers: dict[str, Any]


# ---------------------------------------------------------------- admin
class ApiKeyCreate(Request):
    name: str = Field(min_length=1, max_length=200, examples=["ingest-bot"])
    role: Literal["admin", "researcher", "viewer"] = "researcher"


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(description="the key's public id (its token subject is key:<id>)", examples=["3f9a1c0b7d2e"])
    name: str = Field(examples=["ingest-bot"])
    role: str = Field(examples=["researcher"])
    created_at: float = Field(description="Unix seconds")
    created_by: str | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    role: str
    created_at: float
    key: str = Field(description="the API key itself (glk_<id>_<secret>): shown this once, stored only hashed")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class RestoreOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    lattice: str
    gems: int
    version: int


class RecoveryCheckOut(BaseModel):
    name: str = Field(description="schema | log | snapshot", examples=["log"])
    target: str = Field(description="the lattice checked (empty for the database)", examples=["demo"])
    severity: Literal["error", "warning"] = Field(description="error: blocks writes; warning: reported only")
    detail: str


class VerificationOut(BaseModel):
    ok: bool = Field(description="no error-severity check failed")
    reason: str = Field(examples=["failover: the database moved from 127.0.0.1:5433 to 127.0.0.1:5434"])
    seconds: float = Field(description="wall time the verification took, seconds")
    started_at: str = Field(description="ISO 8601, UTC")
    checks: int = Field(description="checks run")
    failed: list[RecoveryCheckOut] = Field(description="the failed checks, errors first")


class RecoveryOut(BaseModel):
    """The store's recovery gate (core.store.recovery): writes wait for a verification after a failover."""

    state: Literal["ok", "recovering", "read-only"] = Field(
        description="ok; recovering: the database server changed (failover, restart) and the state is being "
                    "verified before the next write; read-only: the verification failed, writes are refused")
    writable: bool = Field(description="writes are accepted (state ok)")
    reason: str = Field(description="why the state was entered (empty at start-up)")
    server: str = Field(description="the database server last connected to (PostgreSQL host:port; empty on SQLite)")
    since: str | None = Field(description="when the state was entered, ISO 8601 UTC (null: since start-up)")
    message: str = Field(description="one line for a banner", examples=["OK"])
    last_verification: VerificationOut | None = Field(description="the last verification (null: none yet)")


class Health(BaseModel):
    status: Literal["ok"] = Field("ok", description="always ok: the process answers (liveness)")
    recovery: RecoveryOut = Field(description="the recovery state, read without touching the database")


class Ready(BaseModel):
    status: Literal["ready", "read-only"] = Field(
        "ready", description="ready: reads and writes; read-only: reads only (the recovery verification failed)")
    database: str = Field(description="database dialect", examples=["sqlite"])
    lattices: int
    rate_limits: dict[str, Any] = Field(description="rate-limit storage (shared through Redis or per process)")
    recovery: RecoveryOut


# the error responses every authenticated route may give (documented once, added to each route)
BAD_REQUEST = {400: {"model": ErrorResponse, "description": "a body that is not JSON or not a form (malformed), or "
                                                                "a request core refuses (bad_request)"}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_REQUEST,
    401: {"model": ErrorResponse, "description": "no, or a refused, bearer token"},
    403: {"model": ErrorResponse, "description": "the token's role does not allow this"},
    422: {"model": ErrorResponse, "description": "a value outside what the model allows"},
    429: {"model": ErrorResponse, "description": "rate limit reached (see Retry-After)"},
    503: {"model": ErrorResponse, "description": "the database is unavailable"},
}
NOT_FOUND = {404: {"model": ErrorResponse, "description": "unknown lattice or gem"}}
CONFLICT = {409: {"model": ErrorResponse, "description": "the version you sent is no longer current"}}
