"""The crawler's WARC output read by warcio, the Python library web archives use.

A real crawl (``rpcs master``, the generated site, ``rpcs-crawler crawl --warc``) writes
one WARC file; warcio reads every record with digest checks on, and finds one response
and one request record per page the crawler saved, with the body the page file holds.
"""

import hashlib
import json
import subprocess
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from conftest import ServerProcess

CRAWL_TIMEOUT = 120.0


def test_a_crawls_warc_reads_back_in_warcio_with_valid_digests(bin_dir, tmp_path):
    master = ServerProcess([bin_dir / "rpcs", "master", "--backend", "memory", "--listen",
                            "127.0.0.1:0"], 1, tmp_path / "master.log")
    site = subprocess.Popen([str(bin_dir / "rpcs-crawl-site"), "--hosts", "127.0.0.1",
                             "--pages", "20"], stdout=subprocess.PIPE, text=True)
    try:
        root = site.stdout.readline().strip()
        assert root.startswith("http://127.0.0.1:"), root
        ws = master.urls[0].replace("http://", "ws://")
        common = ["--master", ws, "--crawl", "warc"]
        crawler = str(bin_dir / "rpcs-crawler")
        added = subprocess.run([crawler, "add", root, *common], capture_output=True, text=True,
                               timeout=CRAWL_TIMEOUT)
        assert added.returncode == 0, added.stderr
        out, warc = tmp_path / "out", tmp_path / "warc"
        done = subprocess.run([crawler, "crawl", *common, "--out", str(out), "--warc", str(warc),
                               "--delay", "0", "--name", "archiver", "--exit-when-done"],
                              capture_output=True, text=True, timeout=CRAWL_TIMEOUT)
        assert done.returncode == 0, done.stderr
    finally:
        site.terminate()
        site.wait(timeout=10)
        master.stop()

    records = {}
    for p in out.rglob("*.page.json"):
        r = json.loads(p.read_text())
        if r["status"]:
            records[r["url"]] = (r, p.with_suffix(""))
    assert len(records) > 20, sorted(records)

    files = list(warc.glob("archiver-*.warc.gz"))
    assert len(files) == 1, files
    responses, requests, infos = {}, {}, 0
    with open(files[0], "rb") as f:
        for rec in ArchiveIterator(f, check_digests="raise"):
            kind = rec.rec_type
            if kind == "warcinfo":
                infos += 1
                continue
            uri = rec.rec_headers.get_header("WARC-Target-URI")
            if kind == "response":
                body = rec.content_stream().read()
                responses[uri] = (rec.http_headers.get_statuscode(), body,
                                  rec.rec_headers.get_header("WARC-Record-ID"))
            elif kind == "request":
                requests[uri] = rec.rec_headers.get_header("WARC-Concurrent-To")
    assert infos == 1
    assert set(responses) == set(records)
    for uri, (status, body, rid) in responses.items():
        record, page = records[uri]
        assert int(status) == record["status"], uri
        assert hashlib.sha1(body).digest() == hashlib.sha1(Path(page).read_bytes()).digest(), uri
        assert requests[uri] == rid, "each request record points at its response"
