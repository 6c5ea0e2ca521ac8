"""Failure searchers (a registry: identify, ppo, uniform, thompson, cross_entropy, lucb) and the search MDP."""
from . import bandits, identify, ppo  # noqa: F401  (register the searchers)
from .base import SEARCHERS, EpisodeRequest, SearchContext, Searcher, episode_seed, make_searcher, register_searcher

__all__ = ["SEARCHERS", "EpisodeRequest", "SearchContext", "Searcher", "episode_seed", "make_searcher",
           "register_searcher"]
