"""Knowledge Processor: embedders (one per module, found by name in the registry), resonance
ranking under the lattice's scoring rule (with why a ranking is empty), the hybrid retriever
(BM25 fused with the similarity) and the resonance cache."""
from core.knowledge.base import (EmbedderMismatchError, Embedder, EmbeddingError, check_embedder, embed_in_batches,
                                 normalise_rows, reembed)
from core.knowledge.cache import CacheStats, ResonanceCache, cache_key
from core.knowledge.hashing import HashingEmbedder
from core.knowledge.hashing_v2 import HashingEmbedderV2
from core.knowledge.hybrid import (HYBRID_EMBEDDER, W_DATE, W_LEXICAL, HybridIndex, HybridTerms, default_embedder, fuse,
                                   gem_text, hybrid_resonance, hybrid_terms, rank_question)
from core.knowledge.lexical import LexicalIndex
from core.knowledge.minilm import MiniLMEmbedder
from core.knowledge.openai_embedder import OpenAIEmbedder
from core.knowledge.registry import DEFAULT_EMBEDDER, available_embedders, get_embedder
from core.knowledge.resonance import (RankedGem, Ranking, batch_resonance, cosine_matrix, embed_queries,
                                      rank_similarities, ranking_columns, rankings_frame, resonance,
                                      resonance_matrix, similarities)
from core.knowledge.scoring import RULE_FORMULAS, RULE_TERMS, explain_empty

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "HashingEmbedder", "available_embedders", "embed_in_batches",
           "get_embedder", "normalise_rows", "EmbedderMismatchError", "EmbeddingError", "RankedGem", "Ranking",
           "batch_resonance", "MiniLMEmbedder", "OpenAIEmbedder", "check_embedder", "cosine_matrix", "embed_queries",
           "rankings_frame", "reembed", "resonance", "resonance_matrix", "CacheStats", "ResonanceCache", "cache_key",
           "RULE_FORMULAS", "RULE_TERMS", "explain_empty", "ranking_columns",
           "HashingEmbedderV2", "HybridIndex", "HybridTerms", "LexicalIndex", "fuse", "hybrid_resonance",
           "hybrid_terms", "rank_similarities", "similarities", "HYBRID_EMBEDDER", "W_DATE", "W_LEXICAL",
           "default_embedder", "gem_text", "rank_question"]
