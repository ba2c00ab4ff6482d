"""``threelines serve``: a resident consultation service (HTTP API and a web page).

The layers and rules are loaded once (:mod:`threelines.serve.service`);
the HTTP application (:mod:`threelines.serve.app`) screens footprints and
zones regions through the same code paths as ``screen`` and ``siting``.
"""
