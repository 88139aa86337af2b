"""Downloading with a progress bar, resume, checksum and an atomic rename."""
import hashlib
import os
import urllib.error
import urllib.request


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download_url(url, path, md5=None, progress=True, timeout=60):
    """Download ``url`` to ``path``.

    Bytes go to ``path + '.part'``; an interrupted download resumes from there with an HTTP
    Range request (or starts over if the server ignores it). The finished file is checked
    against ``md5`` and only then renamed to ``path``, so ``path`` never holds half a file.
    """
    part = path + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise RuntimeError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"cannot reach {url} ({exc}); download it by hand and pass its path") from None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            mode = "ab" if resumed else "wb"
            bar = None
            if progress:
                from tqdm.auto import tqdm
                bar = tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                           desc=os.path.basename(path))
            with open(part, mode) as f:
                for block in iter(lambda: response.read(1 << 16), b""):
                    f.write(block)
                    if bar is not None:
                        bar.update(len(block))
            if bar is not None:
                bar.close()
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            os.remove(part)
            raise RuntimeError(f"{url}: md5 {got} does not match the expected {md5}; the partial file "
                               "was removed, try again")
    os.replace(part, path)
    return path
