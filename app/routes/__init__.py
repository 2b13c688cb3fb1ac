"""One module a resource: inference (chat, completions, embeddings), models, health."""
