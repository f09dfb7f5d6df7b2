"""The client half: calling peers (collection and push cycles, one-shot commands).

* :mod:`.session` — one aiohttp session per peer per cycle (mutual TLS, one
  keep-alive connection, one cookie jar), the five operations, streaming DIME
  both ways;
* :mod:`.collect` — the collection cycle of CPCSCC.md §8;
* :mod:`.push` — the push cycle of §4.5, with :mod:`.retry_policy`;
* :mod:`.runner` — one cycle of one peer at a time (locks, status facts);
* :mod:`.schedule` — the APScheduler jobs the daemon adds;
* :mod:`.commands` — ``concentrador collect|push|ls|time|retry``.
"""
