"""Downloading with a progress bar, resume, checksum and an atomic rename."""
import hashlib
import http.client
import os
import urllib.error
import urllib.request


class DownloadError(OSError):
    """A download that failed: server unreachable, an HTTP error, a connection closed early, or
    a checksum that does not match. ``str()`` is one line naming the URL and the reason."""


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _why(exc):
    """The short reason inside a urllib/socket error ('Connection refused', 'timed out')."""
    exc = getattr(exc, "reason", exc)  # URLError wraps the socket's error
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def download_url(url, path, md5=None, progress=True, timeout=60):
    """Download ``url`` to ``path``.

    Bytes go to ``path + '.part'``; an interrupted download resumes from there with an HTTP
    Range request (or starts over if the server ignores it). The finished file is checked
    against ``md5`` and only then renamed to ``path``, so ``path`` never holds half a file.
    Raises DownloadError (an OSError) with a one-line message; the ``.part`` file is kept for
    the next attempt unless its checksum was wrong.
    """
    part = path + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    failed = f"download of {url} failed"
    try:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        if exc.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise DownloadError(f"{failed}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: not a URL
        raise DownloadError(f"{failed}: {_why(exc)}") from None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            bar = None
            if progress:
                from tqdm.auto import tqdm
                bar = tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                           desc=os.path.basename(path))
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:
                if os.path.exists(part) and os.path.getsize(part):
                    raise DownloadError(f"{failed} after {os.path.getsize(part)} bytes: {_why(exc)}; "
                                        f"run again to resume from {part}") from None
                raise DownloadError(f"{failed}: {_why(exc)}") from None
            finally:
                if bar is not None:
                    bar.close()
            got = os.path.getsize(part)
            if total is not None and got < total:
                raise DownloadError(f"{failed}: the connection closed after {got} of {total} bytes; "
                                    f"run again to resume from {part}")
    if md5:
        got = md5sum(part)
        if got != md5:
            os.remove(part)
            raise DownloadError(f"{failed}: its md5 {got} does not match the expected {md5} (a wrong "
                                "or corrupted file, removed)")
    os.replace(part, path)
    return path
