"""Knowledge Processor: embedders, resonance ranking and the resonance cache."""
from core.knowledge.embedders import (DEFAULT_EMBEDDER, Embedder, HashingEmbedder, available_embedders,
                                      embed_in_batches, get_embedder, normalise_rows)
from core.knowledge.processor import (EmbedderMismatchError, EmbeddingError, RankedGem, Ranking, batch_resonance,
                                      MiniLMEmbedder, OpenAIEmbedder, check_embedder, cosine_matrix, embed_queries, rankings_frame, reembed,
                                      resonance, resonance_matrix)
from core.knowledge.cache import CacheStats, ResonanceCache, cache_key

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "HashingEmbedder", "available_embedders", "embed_in_batches",
           "get_embedder", "normalise_rows", "EmbedderMismatchError", "EmbeddingError", "RankedGem", "Ranking",
           "batch_resonance", "MiniLMEmbedder", "OpenAIEmbedder", "check_embedder", "cosine_matrix", "embed_queries", "rankings_frame", "reembed",
           "resonance", "resonance_matrix", "CacheStats", "ResonanceCache", "cache_key"]
