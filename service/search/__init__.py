"""A question becomes a page of ranked passages here.

- `query.py`: the query syntax (phrases, -exclusions, inline filters such as
  `speaker:"Lord Alton" from:2023-01-01`), parsed into a `ParsedQuery`;
- `ranking.py`: the ranking modes, their weights, the keyword query and
  fusion: one definition, whichever store runs it (to add a mode, start there);
- `searcher.py`: `Searcher`, which turns a `SearchRequest` (or a seed, for
  "similar") into a `SearchPage`: filters, ranking, paging, grouping, date
  order and facets;
- `highlight.py`: the best-matching sentences of each result and the query's
  words marked in it.
"""

from service.search.query import ParsedQuery, parse_query
from service.search.ranking import DEFAULT_MODE, MODES, SIMILAR_MODES, Mode, Seed, SimilarMode
from service.search.searcher import (FACETS, MAX_SEEDS, GroupBy, Hit, LockedEncoder, QueryError, SearchPage,
                                     SearchRequest, Searcher, Sort)

__all__ = ["DEFAULT_MODE", "FACETS", "MAX_SEEDS", "MODES", "SIMILAR_MODES", "GroupBy", "Hit", "LockedEncoder", "Mode",
           "ParsedQuery", "QueryError", "SearchPage", "SearchRequest", "Searcher", "Seed", "SimilarMode", "Sort",
           "parse_query"]
