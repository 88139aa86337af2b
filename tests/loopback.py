"""A loopback HTTP server over a folder, for download tests without the network.

``serve(folder)`` is a context manager yielding the server; ``server.url(name)`` is a file's
URL, ``server.requests`` the paths asked for, and ``server.honour_range = False`` makes it
ignore Range headers like a server without resume support (the standard handler always does);
``server.cut = N`` sends only a response's first N bytes and hangs up (a dropped connection).
"""
import contextlib
import http.server
import socket
import threading


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        try:
            with open(self.translate_path(self.path), "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and self.server.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:self.server.cut])


@contextlib.contextmanager
def serve(folder):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: _RangeHandler(*a, directory=str(folder), **k))
    httpd.honour_range, httpd.cut, httpd.requests = True, None, []
    httpd.url = lambda name: f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def closed_port_url(name="file"):
    """A loopback URL nothing listens on (a port just bound and released): connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"
