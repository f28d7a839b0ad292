"""Commands from the cloud: consent withdrawal and erasure, carried out and acknowledged."""
