"""Pseudonyms are domain-separated by tenant and site; a site secret comes to exist only
through ``facegate site secret create`` and reaches a gate through ``export-for-gate``;
a gate without its site's secret refuses to start."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import ConfigError
from edge_agent.pseudonym import SiteSecret, derive, load_site_secret, pseudonym
from tests.conftest import FACEGATE

KEY = bytes(range(32))


def reference(key: bytes, *parts: str) -> str:
    """The construction as the docs state it, written independently of the code."""
    framed = b"".join(struct.pack(">I", len(p.encode())) + p.encode() for p in parts)
    return "ps1_" + hmac.new(key, framed, hashlib.sha256).hexdigest()[:32]


@pytest.mark.unit
def test_vectors() -> None:
    # HMAC-SHA256(key 00..1f, len-prefixed "facegate/pseudonym/v1" | tenant | site | id)[:16]
    assert derive(KEY, "acme", "north", "resident-00042") == "ps1_be76483959e7de3977b6654b666b457c"
    assert derive(KEY, "acme", "south", "resident-00042") == "ps1_9349374f28aa999d420f564a98b03d02"
    # Moving a character across a boundary changes the input: no concatenation collision.
    assert derive(KEY, "acme", "nort", "hresident-00042") == "ps1_e3265f97f275130a3b8ac173737f8c04"


@pytest.mark.unit
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=40))
def test_the_code_is_the_stated_construction(tenant: str, site: str, resident: str) -> None:
    assert derive(KEY, tenant, site, resident) == reference(
        KEY, "facegate/pseudonym/v1", tenant, site, resident
    )


@pytest.mark.unit
def test_one_key_at_two_sites_gives_unrelated_pseudonyms() -> None:
    north, south = SiteSecret("acme", "north", KEY), SiteSecret("acme", "south", KEY)
    other_firm = SiteSecret("rival", "north", KEY)
    names = {pseudonym(s, "resident-1") for s in (north, south, other_firm)}
    assert len(names) == 3


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FACEGATE, *args], capture_output=True, text=True, timeout=120)
    assert not check or done.returncode == 0, done.stderr
    return done


def device_file(path: Path, site: str) -> Path:
    doc = {"tenant": "acme", "site": site, "gate": "gate-1", "device": "cam-1",
           "mqtt": {"host": "127.0.0.1", "port": 9, "username": "u", "password": "p"}}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.e2e
def test_create_export_and_a_gate_without_its_secret(tmp_path: Path) -> None:
    office = tmp_path / "office" / "north.secret"
    run("site", "secret", "create", "--tenant", "acme", "--site", "north", "--out", str(office))
    assert stat.S_IMODE(office.stat().st_mode) == 0o600
    made = load_site_secret(office, "acme", "north")
    again = run("site", "secret", "create", "--tenant", "acme", "--site", "north",
                "--out", str(office), check=False)  # fmt: skip
    assert again.returncode != 0 and "orphan" in again.stderr
    assert load_site_secret(office) == made  # never replaced

    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    device = device_file(tmp_path / "device.json", "north")
    # No secret: the gate refuses to start, and says how to get one; it makes none.
    refused = run("edge", "simulate", "--device-config", str(device), "--data-dir",
                  str(gate_dir), "--count", "1", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "no site secret" in refused.stderr and "site secret create" in refused.stderr
    assert "Traceback" not in refused.stderr and not (gate_dir / "site.secret").exists()

    # A gate of another site does not get this site's secret.
    south = device_file(tmp_path / "south.json", "south")
    wrong = run("site", "secret", "export-for-gate", "--secret", str(office), "--device-config",
                str(south), "--out", str(gate_dir / "site.secret"), check=False)  # fmt: skip
    assert wrong.returncode != 0 and "not of acme/south" in wrong.stderr
    assert not (gate_dir / "site.secret").exists()

    run("site", "secret", "export-for-gate", "--secret", str(office), "--device-config",
        str(device), "--out", str(gate_dir / "site.secret"))  # fmt: skip
    assert load_site_secret(gate_dir / "site.secret", "acme", "north") == made
    with pytest.raises(ConfigError, match="not of acme/south"):
        load_site_secret(gate_dir / "site.secret", "acme", "south")


@pytest.mark.unit
def test_a_raw_secret_file_is_refused_with_the_way_out(tmp_path: Path) -> None:
    raw = tmp_path / "site.secret"
    raw.write_bytes(KEY)
    with pytest.raises(ConfigError, match="not a facegate site secret.*site secret create"):
        load_site_secret(raw)
