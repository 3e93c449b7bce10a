"""Decoding: search over the decoding contract, ensembles, int8, devices, the Translator."""
