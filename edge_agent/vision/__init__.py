"""On-device recognition: detect → align → embed → 1:N match → track → decide."""
