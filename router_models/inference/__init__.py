"""Routing decisions at request time: strategies, learned scorers, the cost decision."""
