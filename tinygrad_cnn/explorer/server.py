"""The live explorer: the page served on 127.0.0.1 at a free port, explanations computed on demand.

Standard library only: ``http.server.ThreadingHTTPServer`` on a daemon thread (so it ends with the process; an
``atexit`` hook closes it cleanly too). It holds its graph while it serves; ``close()`` takes the hook off again,
so a closed server keeps nothing alive. As Jupyter does, the URL carries a random token (``?token=...``); any
request without it, or with a Host header other than 127.0.0.1 or localhost at this port (a DNS-rebinding guard),
gets 403. Routes: ``/`` the page; ``/explain?node=<data-node>&entry=i,j,k,l`` the JSON of
``explain(root, node, (i, j, k, l))``. The page is built once, when the server starts: a snapshot of the graph
then; explanations read the graph as it is when asked.

May import: ``explorer.page``, ``explorer.nodes``, the standard library.
"""

from __future__ import annotations

import atexit
import hmac
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import nodes, page

HOST = "127.0.0.1"


class ExplorerServer:
    """A running explorer: ``url`` (with its token), ``close()``; a context manager that closes on exit.

    root: the tensor whose graph is shown; profile: a ``tinygrad_cnn.profile()`` that ran its forward and
    backward, or None; page_title: the page's title; options: ``draw_graph``'s (``params``, ``max_nodes``,
    ``show_rule``, ...) and ``top`` (how many largest |grad| entries each panel lists).
    """

    def __init__(self, root, profile=None, page_title: str | None = None, **options):
        self.graph = page.build_graph(root, profile, **options)
        self.token = secrets.token_urlsafe(24)
        title = page_title or page.default_title(root)
        self._html = page.render(self.graph, title, live=True, token=self.token, profile=profile).encode()
        self._lock = threading.Lock()  # one explanation at a time: they read the graph and run its closures
        self._httpd = ThreadingHTTPServer((HOST, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.explorer = self
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{HOST}:{self.port}/?token={self.token}"
        self._hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"explorer:{self.port}", daemon=True)
        self._thread.start()
        self.closed = False
        atexit.register(self.close)

    def close(self) -> None:
        """Stop serving and free the port (calling it twice is harmless)."""
        if self.closed:
            return
        self.closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        atexit.unregister(self.close)

    def __enter__(self) -> ExplorerServer:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<ExplorerServer {'closed' if self.closed else 'serving'} at {self.url}>"

    # ------------------------------------------------------------------ requests
    def allowed(self, host: str | None, token: str) -> bool:
        """True for a request to this server's own host name that carries the token."""
        return host in self._hosts and hmac.compare_digest(token.encode(), self.token.encode())

    def explain(self, node: str, entry: str) -> dict:
        """The page's explanation of ``node``'s gradient at ``entry`` ('i,j,k,l'); KeyError, ValueError,
        IndexError or RuntimeError with a message when it cannot be given."""
        if node not in self.graph.tensors:
            raise KeyError(f"no drawn tensor is called {node!r}")
        t = self.graph.tensors[node]
        index = nodes.parse_entry(entry, t.shape)
        with self._lock:
            return nodes.explanation(self.graph.root, t, index)


class _Handler(BaseHTTPRequestHandler):
    server_version = "tinygrad_cnn-explorer"

    def log_message(self, format, *args) -> None:  # quiet: a notebook or a script is not a server log
        pass

    def do_GET(self) -> None:
        explorer = self.server.explorer
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not explorer.allowed(self.headers.get("Host"), query.get("token", [""])[0]):
            self._send(403, "text/plain; charset=utf-8",
                       b"403 Forbidden: open the URL that tinygrad_cnn.explore() gave (server.url), token included")
        elif url.path == "/":
            self._send(200, "text/html; charset=utf-8", explorer._html)
        elif url.path == "/explain":
            try:
                body, status = explorer.explain(query.get("node", [""])[0], query.get("entry", [""])[0]), 200
            except (KeyError, ValueError, IndexError, RuntimeError) as error:
                body, status = {"error": str(error.args[0] if error.args else error)}, 400
            self._send(status, "application/json", json.dumps(body).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"404 Not Found")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", page.LIVE_POLICY)
        self.end_headers()
        self.wfile.write(body)
