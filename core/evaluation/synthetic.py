"""Synthetic timelines with a planted forgetting curve: ground truth for sweeps and the optimiser.

Each question has a handful of *candidates*: gems on its topic with a planted similarity
``s_j`` (cosine to the question, in [0.3, 0.95]) and a planted age ``a_j``; the rest of the
lattice are unrelated distractors. The question's evidence is the candidate a memory with
the planted decay would rank first, ``argmax_j s_j exp(-lambda* a_j / E_j)`` (the product
rule, energies known to the lattice). Recall at rank 1 and MRR therefore peak at the planted
decay scale lambda* (half-life ``E ln 2 / lambda*``): a decay that is too slow prefers old,
very similar gems; one too fast prefers new, less similar ones. Embeddings are constructed
directly (``g = s q + sqrt(1 - s^2) r``, r orthogonal to q), so the similarities are exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.engine import Lattice, lambda_for_half_life, preset_params
from core.evaluation.corpus import EvalCorpus
from core.evaluation.questions import QuestionSet, question_set
from core.knowledge import get_embedder


@dataclass
class PlantedTimeline:
    corpus: EvalCorpus
    questions: QuestionSet
    query_embeddings: np.ndarray  # (Q, d) float32, one per question (the texts are labels only)
    half_life: float  # planted, lattice time units (hours), at E = 1
    lambda_: float


def planted_timeline(questions: int = 150, candidates: int = 6, distractors: int = 2000, dim: int = 256,
                     half_life: float = 72.0, seed: int = 0) -> PlantedTimeline:
    """A timeline in hours, all questions asked at its end; ages of candidates up to four
    planted half-lives; energies in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    lam = lambda_for_half_life(half_life)
    q_vec = rng.standard_normal((questions, dim)).astype(np.float64)
    q_vec /= np.linalg.norm(q_vec, axis=1, keepdims=True)
    n_cand = questions * candidates
    sims = rng.uniform(0.3, 0.95, (questions, candidates))
    ages = rng.uniform(0, 4 * half_life, (questions, candidates))
    energy_c = rng.uniform(0.5, 2.0, (questions, candidates))
    noise = rng.standard_normal((questions, candidates, dim))
    noise -= np.einsum("qcd,qd->qc", noise, q_vec)[..., None] * q_vec[:, None, :]  # orthogonal to q
    noise /= np.linalg.norm(noise, axis=2, keepdims=True)
    cand_vec = sims[..., None] * q_vec[:, None, :] + np.sqrt(1 - sims ** 2)[..., None] * noise
    dis_vec = rng.standard_normal((distractors, dim))
    dis_vec /= np.linalg.norm(dis_vec, axis=1, keepdims=True)
    emb = np.concatenate([cand_vec.reshape(n_cand, dim), dis_vec]).astype(np.float32)
    n = emb.shape[0]
    t_end = 4 * half_life + 1.0
    created = np.concatenate([t_end - ages.ravel(), rng.uniform(0, t_end, distractors)])
    energy = np.concatenate([energy_c.ravel(), rng.uniform(0.5, 2.0, distractors)])
    params = preset_params("seed").replace(lambda_=lam, min_score=0.0, scoring="product", k=5)
    lat = Lattice(energy, params=params, ids=[f"s{i}" for i in range(n)], t=t_end)
    lat.set_states(np.arange(n), coherence=np.exp(-lam * (t_end - created) / energy))
    winners = np.argmax(sims * np.exp(-lam * ages / energy_c), axis=1)
    rows = [{"id": f"p{q}", "question": f"planted question {q}", "asked_at": t_end,
             "evidence": [f"s{q * candidates + int(w)}"]} for q, w in enumerate(winners)]
    corpus = EvalCorpus(ids=list(lat.ids), texts=[f"gem {i}" for i in range(n)], tags=[[] for _ in range(n)],
                        embeddings=emb, lattice=lat, created_t=created, last_observed_t=np.full(n, np.nan),
                        observations=np.zeros(n), embedder=get_embedder("hashing-v1"), name="planted")
    return PlantedTimeline(corpus, question_set(rows, "planted"), q_vec.astype(np.float32), half_life, lam)
