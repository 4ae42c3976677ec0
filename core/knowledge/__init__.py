"""Knowledge Processor: embedders (one per module, found by name in the registry), resonance
ranking under the lattice's scoring rule (with why a ranking is empty) and the resonance cache."""
from core.knowledge.base import (EmbedderMismatchError, Embedder, EmbeddingError, check_embedder, embed_in_batches,
                                 normalise_rows, reembed)
from core.knowledge.cache import CacheStats, ResonanceCache, cache_key
from core.knowledge.hashing import HashingEmbedder
from core.knowledge.minilm import MiniLMEmbedder
from core.knowledge.openai_embedder import OpenAIEmbedder
from core.knowledge.registry import DEFAULT_EMBEDDER, available_embedders, get_embedder
from core.knowledge.resonance import (RankedGem, Ranking, batch_resonance, cosine_matrix, embed_queries,
                                      ranking_columns, rankings_frame, resonance, resonance_matrix)
from core.knowledge.scoring import RULE_FORMULAS, RULE_TERMS, explain_empty

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "HashingEmbedder", "available_embedders", "embed_in_batches",
           "get_embedder", "normalise_rows", "EmbedderMismatchError", "EmbeddingError", "RankedGem", "Ranking",
           "batch_resonance", "MiniLMEmbedder", "OpenAIEmbedder", "check_embedder", "cosine_matrix", "embed_queries",
           "rankings_frame", "reembed", "resonance", "resonance_matrix", "CacheStats", "ResonanceCache", "cache_key",
           "RULE_FORMULAS", "RULE_TERMS", "explain_empty", "ranking_columns"]
