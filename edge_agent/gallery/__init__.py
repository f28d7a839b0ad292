"""The consent-gated gallery: templates of consenting residents only, encrypted at rest."""
