"""Learned routing for RouteIQ: training, evaluation, artifacts and inference.

This package never imports ray or fastapi. Heavy libraries (torch, llmrouter) are
imported only by the submodules that need them, never by this ``__init__``.
"""
