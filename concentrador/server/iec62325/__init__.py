"""The server side of CPCSCC v3.0: the IEC 62325-504 profile.

``handler.serve_504`` is the entry (called from ``server/app.py``); one
concept per module: ``peek`` (which profile a body speaks), ``upload`` (the
body split into XML and base64 on disk), ``identity`` (Source and signer
checks), ``answers`` (signed answers, faults), ``listing``, ``serving``
(``get``, streamed by ``stream``), ``putting`` and ``query``.

Kept empty of imports: ``server/state.py`` imports ``signing`` from here.
"""
