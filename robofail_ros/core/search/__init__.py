"""Failure searchers (a registry: identify, ppo, uniform, thompson, cross_entropy, lucb) and the search MDP."""
from . import bandits, identify, ppo  # noqa: F401  (register the searchers)
from .base import SEARCHERS, EpisodeRequest, SearchContext, Searcher, episode_seed, make_searcher, register_searcher

DEFAULT_SEARCHER = identify.IdentifySearcher.NAME  # what a config that names none runs
EVALUATION_SEARCHER = bandits.UniformSearcher.NAME  # `robofail evaluate`: every perturbation equally often
PAPER_SEARCHER = ppo.PPOSearcher.NAME  # `robofail reproduce-paper`: the paper's method

__all__ = ["DEFAULT_SEARCHER", "EVALUATION_SEARCHER", "PAPER_SEARCHER", "SEARCHERS",
           "EpisodeRequest", "SearchContext", "Searcher", "episode_seed", "make_searcher",
           "register_searcher"]
