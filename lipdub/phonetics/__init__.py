"""The phonetic path: dub audio (and its script, when there is one) → phones → visemes per frame."""
