"""Chainproof: long-chain reasoning agents on LangGraph with goal reviews, effort routing, human
approval and a replayable, hash-chained SQL audit trail.

This module is the public face (stage 1: the namespace; the full API follows)."""
